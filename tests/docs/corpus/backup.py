#!/usr/bin/env python3
"""Nightly backup of the project database.

A compressed dump is written to /srv/backups every night at 02:00. Dumps older than 14 days are
deleted automatically (retention), except the dump of the first day of each month, which is kept
for a year.
"""

import datetime
import pathlib
import subprocess

BACKUP_DIR = pathlib.Path("/srv/backups")
RETENTION_DAYS = 14
MONTHLY_RETENTION_DAYS = 365


def dump(now: datetime.datetime) -> pathlib.Path:
    target = BACKUP_DIR / f"heron-{now:%Y%m%d}.sql.gz"
    subprocess.run(["sh", "-c", f"pg_dump heron | gzip > {target}"], check=True)
    return target


def prune(today: datetime.date) -> list[pathlib.Path]:
    """Remove expired dumps; monthly ones live longer."""
    removed = []
    for path in BACKUP_DIR.glob("heron-*.sql.gz"):
        day = datetime.datetime.strptime(path.name[6:14], "%Y%m%d").date()
        keep = MONTHLY_RETENTION_DAYS if day.day == 1 else RETENTION_DAYS
        if (today - day).days > keep:
            path.unlink()
            removed.append(path)
    return removed
