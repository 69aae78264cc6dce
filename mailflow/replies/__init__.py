"""Replies to residents: composed from templates (``compose``, ``context``), built as safe bytes
(``mime``), tied to their case by signed Message-IDs (``thread_tokens``) and delivered at most once
(``outbox``)."""
