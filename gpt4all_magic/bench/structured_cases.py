"""Rows and schemas for the structured-output benchmark and the validity tests: a dozen schemas covering
nested objects, enums, arrays, integers and numbers with bounds, optional fields and strings with
``maxLength``, four texts each; and support tickets for the extraction and classification timings."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, Optional

__all__ = ["CASES", "LABELS", "TICKET_SCHEMA", "Case", "pydantic_cases", "tickets"]


class Case(NamedTuple):
    name: str
    schema: Any  # a JSON Schema dict, or a pydantic model class (made by pydantic_cases())
    template: str
    texts: tuple[str, ...]


def _s(n: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": n}


_DICT_CASES = [
    Case("person", {"type": "object", "properties": {"name": _s(40), "age": {"type": "integer", "minimum": 0,
                                                                               "maximum": 120}},
                    "required": ["name", "age"]},
         "Extract the person's name and age as JSON.\n\n{text}",
         ("Maria Lopez is 34 and works as a nurse in Madrid.", "Old Tom turned 97 last week.",
          "Little Ana, aged 6, won the spelling contest.", "Dr. James Whitfield (58) retired in May.")),
    Case("ticket", {"type": "object", "properties": {
        "product": _s(30), "urgency": {"type": "string", "enum": ["low", "medium", "high"]},
        "refund": {"type": "boolean"}}, "required": ["product", "urgency", "refund"]},
         "Read this support ticket and fill in product, urgency and whether a refund is asked.\n\n{text}",
         ("My blender arrived broken. I want my money back now!", "How do I change the language of my e-reader?",
          "The headphones stopped charging after a week; please refund me.",
          "Minor: the lamp's switch is a bit stiff, no hurry.")),
    Case("order", {"type": "object", "properties": {
        "order_id": {"type": "integer", "minimum": 1, "maximum": 99999},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
        "unit_price": {"type": "number", "minimum": 0, "maximum": 10000}},
        "required": ["order_id", "quantity", "unit_price"]},
         "Extract the order number, the quantity and the unit price in dollars.\n\n{text}",
         ("Order 4411: 3 mugs at $12.50 each.", "Please ship order #87 with 10 pencils, 0.99 dollars apiece.",
          "Order 1203 - quantity 2 - price per item 249 dollars.", "I bought 5 towels (order 555) for $8 each.")),
    Case("review", {"type": "object", "properties": {
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "sentiment": {"type": "string", "enum": ["positive", "negative", "mixed"]}, "summary": _s(60)},
        "required": ["rating", "sentiment", "summary"]},
         "Rate this review from 1 to 5 stars and summarise it.\n\n{text}",
         ("Absolutely love this kettle, boils fast and looks great.", "Terrible. Broke on day two.",
          "Good sound, but the battery is weak.", "Does the job. Nothing special, nothing bad.")),
    Case("address", {"type": "object", "properties": {
        "name": _s(40), "address": {"type": "object", "properties": {"city": _s(30), "country": _s(30)},
                                    "required": ["city", "country"]}},
        "required": ["name", "address"]},
         "Extract the name and the address (city and country) as JSON.\n\n{text}",
         ("Send it to Pierre Dubois in Lyon, France.", "Keiko Tanaka lives in Osaka, Japan.",
          "Deliver to Sam Green, Toronto, Canada.", "Our office contact is Lena Vogel in Munich, Germany.")),
    Case("tags", {"type": "object", "properties": {
        "tags": {"type": "array", "items": _s(20), "minItems": 1, "maxItems": 3}}, "required": ["tags"]},
         "Give one to three short topic tags for this text.\n\n{text}",
         ("The recipe uses flour, butter and apples for a classic pie.",
          "The team won the football final after extra time.", "New GPUs make training neural networks faster.",
          "The museum opened a new gallery of Roman coins.")),
]


def pydantic_cases() -> list[Case]:
    """The cases whose schema is a pydantic model (pydantic imported here, not at import time)."""
    from pydantic import BaseModel, Field

    class Movie(BaseModel):
        title: str = Field(max_length=50)
        year: Optional[int] = Field(default=None, ge=1850, le=2030)
        director: Optional[str] = Field(default=None, max_length=40)

    class Scored(BaseModel):
        label: Literal["spam", "ham"]
        score: float = Field(ge=0, le=1)

    class Item(BaseModel):
        name: str = Field(max_length=20)
        qty: int = Field(ge=1, le=50)

    class Basket(BaseModel):
        items: list[Item] = Field(min_length=1, max_length=3)

    class Flags(BaseModel):
        is_question: bool
        is_complaint: bool
        language: Literal["en", "fr", "de", "es"]

    class Event(BaseModel):
        event: str = Field(max_length=40)
        day: int = Field(ge=1, le=31)
        month: Literal["January", "February", "March", "April", "May", "June", "July", "August", "September",
                       "October", "November", "December"]

    class Weather(BaseModel):
        city: str = Field(max_length=30)
        temperature_c: float = Field(ge=-50, le=60)
        humidity: int = Field(ge=0, le=100)

    texts = {
        "movie": ("Jaws (1975), directed by Steven Spielberg.", "I watched Casablanca last night.",
                  "Christopher Nolan's Inception came out in 2010.", "The old film Metropolis from 1927."),
        "spam": ("WIN A FREE CRUISE!!! Click now!", "Hi mum, I'll be home at six.",
                 "Cheap watches, best prices, buy today", "Meeting moved to 3pm, see agenda attached."),
        "basket": ("I need 2 apples and 3 pears.", "Buy 12 eggs.", "Get 1 bread, 2 milk and 4 yogurts.",
                   "Add 6 bananas to the list."),
        "flags": ("Why is my invoice wrong again? This is unacceptable.", "Bonjour, où est la gare ?",
                  "Das Essen war kalt und der Kellner unhöflich.", "Thanks for the quick delivery!"),
        "event": ("The concert is on 14 July.", "Our wedding: 3 May.", "Tax returns are due April 15.",
                  "The conference starts on the 2nd of November."),
        "weather": ("Oslo: -4 degrees, humidity 80%.", "Cairo is at 38 C with 15% humidity.",
                    "In London it is 12.5 C, humidity 90 percent.", "Lima: 21 degrees and 70% humidity."),
    }
    return [
        Case("movie", Movie, "Extract the film's title, year and director (null if not given).\n\n{text}",
             texts["movie"]),
        Case("spam", Scored, "Is this message spam or ham? Give a score from 0 to 1.\n\n{text}", texts["spam"]),
        Case("basket", Basket, "List the items and quantities to buy.\n\n{text}", texts["basket"]),
        Case("flags", Flags, "Is this a question? A complaint? Which language is it in?\n\n{text}", texts["flags"]),
        Case("event", Event, "Extract the event, its day of the month and the month.\n\n{text}", texts["event"]),
        Case("weather", Weather, "Extract the city, the temperature in Celsius and the humidity.\n\n{text}",
             texts["weather"]),
    ]


CASES = _DICT_CASES  # the dict cases; pydantic_cases() adds the other six

LABELS = ("billing", "technical", "shipping")
TICKET_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "product": _s(30), "problem": _s(60), "urgency": {"type": "string", "enum": ["low", "medium", "high"]},
    "refund_requested": {"type": "boolean"}}, "required": ["product", "problem", "urgency", "refund_requested"]}

_PRODUCTS = ["AeroPress coffee maker", "Kindle Paperwhite", "Sony WH-1000XM4 headphones", "Dyson V8 vacuum",
             "Logitech MX Master mouse", "Instant Pot Duo", "Philips Hue bulb", "Garmin Forerunner watch"]
_ISSUES = [("was charged twice for my {p}", "billing"), ("my {p} will not turn on after the update", "technical"),
           ("the {p} I ordered has not arrived after two weeks", "shipping"),
           ("the invoice for the {p} shows the wrong price", "billing"),
           ("the {p} keeps disconnecting from wifi", "technical"),
           ("the {p} arrived with a crushed box and a missing cable", "shipping"),
           ("I want a refund for the {p}, the discount was not applied", "billing"),
           ("the {p} makes a loud clicking noise", "technical")]


def tickets(n: int) -> list[tuple[str, str]]:
    """``n`` support tickets (text, label), each naming a product the answer copies."""
    rows = []
    for k in range(n):
        product = _PRODUCTS[k % len(_PRODUCTS)]
        issue, label = _ISSUES[(k // len(_PRODUCTS) + k) % len(_ISSUES)]
        rows.append((f"Ticket {k + 1}: Hello, {issue.format(p=product)}. Order {1000 + 37 * k}. Please help.",
                     label))
    return rows
