"""Small multiple-choice item sets, one JSONL file per task in its Hugging Face schema (written for this package)."""
