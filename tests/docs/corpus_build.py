"""The binary documents of the test corpus, made with libraries at test time: a three-page PDF (fpdf2)
and a Word file with headings (python-docx). Their text is here, so the tests can say what is on which page."""

from __future__ import annotations

import shutil
from pathlib import Path

CORPUS = Path(__file__).with_name("corpus")

TELESCOPE_PAGES = [
    ("Assembly", "Screw the three legs of the tripod to the mount head and tighten the clamps. Fit the tube into "
                 "the cradle with the focuser pointing up, and balance it by sliding it forward or back until it stays "
                 "still when released."),
    ("Collimation", "The primary and secondary mirrors must be aligned so that the light reaches the eyepiece in "
                    "focus. Look through the collimation cap and turn the three screws at the back of the tube until the "
                    "reflection of the secondary mirror sits in the centre of the primary. Check the alignment after "
                    "every transport."),
    ("Cleaning and storage", "Never wipe the lenses with a dry cloth. Blow off the dust with an air bulb, then clean "
                             "the glass with a drop of lens fluid on tissue. Store the telescope with its caps on, in a dry "
                             "room at outside temperature to avoid condensation."),
]

BUDGET_SECTIONS = [
    ("Summary", "The second quarter closes within plan. Spending on cloud hosting rose, travel fell."),
    ("Travel", "The travel budget for the quarter is 18,500 euros: two customer visits in Lisbon and the team "
               "offsite in Utrecht. Train is preferred over flights for trips under 700 kilometres."),
    ("Hardware", "New laptops for the four engineers who joined in April cost 9,600 euros. Monitors are reused."),
]


def make_pdf(path: Path, pages: list[tuple[str, str]] = TELESCOPE_PAGES) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for title, body in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, f"Stargazer 130 manual: {title}\n\n{body}")
    pdf.output(str(path))
    return path


def make_scanned_pdf(path: Path) -> Path:
    """A PDF whose page is only a drawing: no text layer, as a scan without OCR."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    pdf.output(str(path))
    return path


def make_docx(path: Path, sections: list[tuple[str, str]] = BUDGET_SECTIONS) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Quarterly budget report Q2", level=1)
    for heading, body in sections:
        document.add_heading(heading, level=2)
        document.add_paragraph(body)
    document.save(str(path))
    return path


def make_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Sourdough hydration\n\nHydration is the weight of water divided by the "
                                      "weight of flour. A 75 % dough with 500 g of flour takes 375 g of water."),
        nbformat.v4.new_code_cell("flour = 500\nhydration = 0.75\nwater = flour * hydration\nwater"),
        nbformat.v4.new_markdown_cell("Let the dough rest for 30 minutes after mixing (autolyse) before adding "
                                      "the starter and salt."),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "375.0 zanzibaroutput"},
                                                  execution_count=1)]
    nbformat.write(nb, path)
    return path


def build(folder: Path) -> Path:
    """The whole corpus (12 files, 7 types) in ``folder``."""
    shutil.copytree(CORPUS, folder, dirs_exist_ok=True)
    make_pdf(folder / "telescope_manual.pdf")
    make_docx(folder / "budget_q2.docx")
    make_notebook(folder / "sourdough.ipynb")
    return folder
