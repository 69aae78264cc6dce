"""Retention and erasure (GDPR art. 5(1)(e) and 17): docs/retention.md.

``erase`` removes an email's or a case's content and leaves a tombstone; ``holds`` sets and lifts legal
holds; ``schedule`` says which rule applies to what; ``job`` is the daily run. What is held about one
person is found by ``mailflow.privacy.subjects``; their erasure request is ``mailflow.privacy.erasure``.
"""
