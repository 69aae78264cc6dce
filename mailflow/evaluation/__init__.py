"""Measuring classification on labelled emails: corpora, the pipeline run, figures and report."""
