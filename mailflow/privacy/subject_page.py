# ruff: noqa: E501 - an HTML template: its lines are the page's
"""The readable page of a subject access export: its template and its labels (English, Dutch).

Not the desk's Flask-Babel catalogue: the page is written by the command line, for the resident, and
must read the same whatever the desk's language."""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your data at the Migration Counter of the City of Ghent",
        "intro": "This is a copy of the personal data the Migration Counter's email processing (mailflow) "
        "keeps about you, made on {when}. The file data.json holds the same in a form computers read; "
        "the folders emails, attachments and replies hold the original files.",
        "identified": "Found by",
        "emails": "Your emails",
        "received": "Received",
        "from": "From",
        "subject": "Subject",
        "status": "Status",
        "case": "Case",
        "original": "original email",
        "documents": "Documents",
        "decisions": "Decisions",
        "replies": "Replies",
        "by": "by",
        "cases": "Your cases",
        "notes": "Notes by staff",
        "linked": "Other cases your emails were filed in",
        "withheld": "Held back for review",
        "withheld_intro": "Emails of other senders filed in your case: they hold someone else's data and "
        "are reviewed by hand before anything of them is given.",
        "views": "Who looked at your data",
        "when": "When",
        "who": "Who",
        "what": "What",
        "events": "Everything that happened",
        "none": "None.",
        "missing": "Files that could not be found",
    },
    "nl": {
        "title": "Uw gegevens bij het Migratieloket van Stad Gent",
        "intro": "Dit is een kopie van de persoonsgegevens die de e-mailverwerking van het Migratieloket "
        "(mailflow) over u bewaart, gemaakt op {when}. Het bestand data.json bevat hetzelfde in een vorm "
        "die computers lezen; de mappen emails, attachments en replies bevatten de originele bestanden.",
        "identified": "Gevonden op",
        "emails": "Uw e-mails",
        "received": "Ontvangen",
        "from": "Van",
        "subject": "Onderwerp",
        "status": "Status",
        "case": "Dossier",
        "original": "originele e-mail",
        "documents": "Documenten",
        "decisions": "Beslissingen",
        "replies": "Antwoorden",
        "by": "door",
        "cases": "Uw dossiers",
        "notes": "Notities van medewerkers",
        "linked": "Andere dossiers waarin uw e-mails zijn opgeborgen",
        "withheld": "Achtergehouden voor nazicht",
        "withheld_intro": "E-mails van andere afzenders in uw dossier: ze bevatten gegevens van iemand "
        "anders en worden met de hand nagekeken voor er iets van wordt meegegeven.",
        "views": "Wie uw gegevens bekeek",
        "when": "Wanneer",
        "who": "Wie",
        "what": "Wat",
        "events": "Alles wat er gebeurde",
        "none": "Geen.",
        "missing": "Bestanden die niet gevonden werden",
    },
}

PAGE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{ t.title }}</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.4}
table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .4em;
text-align:left;vertical-align:top}section.email{border-top:2px solid #333;margin-top:1.5em}
.muted{color:#555}</style></head><body>
<h1>{{ t.title }}</h1>
<p>{{ t.intro.format(when=d.generated_at) }}</p>
<p>{{ t.identified }}: {% for a in d.subject.addresses %}<code class="address">{{ a }}</code> {% endfor %}
{% for n in d.subject.national_numbers %}<code class="nrn">{{ n }}</code> {% endfor %}</p>

<h2>{{ t.emails }} ({{ d.emails|length }})</h2>
{% for e in d.emails %}<section class="email" id="email-{{ e.id }}">
<table><tr><th>{{ t.received }}</th><td>{{ e.received_at }}</td></tr>
<tr><th>{{ t.from }}</th><td>{{ e.from }}</td></tr>
<tr><th>{{ t.subject }}</th><td class="subject">{{ e.subject }}</td></tr>
<tr><th>{{ t.status }}</th><td>{{ e.status }}</td></tr>
<tr><th>{{ t.case }}</th><td>{{ e.case or '' }}</td></tr></table>
<p><a href="{{ e.file }}">{{ t.original }}</a></p>
{% if e.attachments %}<h3>{{ t.documents }}</h3><ul>{% for a in e.attachments %}
<li><a href="{{ a.file }}">{{ a.filename }}</a> ({{ a.document_kind }}, {{ a.size }} B)</li>{% endfor %}</ul>{% endif %}
{% if e.decisions %}<h3>{{ t.decisions }}</h3><ul>{% for x in e.decisions %}
<li>{{ x.at }}: {{ x.category }} → {{ x.action }} ({{ t.by }} {{ x.by }})</li>{% endfor %}</ul>{% endif %}
{% if e.replies %}<h3>{{ t.replies }}</h3><ul>{% for r in e.replies %}
<li><a href="{{ r.file }}">{{ r.subject }}</a> → {{ r.to }} ({{ r.status }}, {{ r.sent_at or r.created_at }})</li>{% endfor %}</ul>{% endif %}
</section>{% else %}<p>{{ t.none }}</p>{% endfor %}

<h2>{{ t.cases }} ({{ d.cases|length }})</h2>
{% for c in d.cases %}<section class="case" id="case-{{ c.reference }}"><h3>{{ c.reference }}</h3>
<p>{{ c.category }} · {{ c.status }} · {{ c.opened_at }}</p>
{% if c.notes %}<h4>{{ t.notes }}</h4><ul>{% for n in c.notes %}<li>{{ n.at }} ({{ n.by }}): {{ n.text }}</li>{% endfor %}</ul>{% endif %}
</section>{% else %}<p>{{ t.none }}</p>{% endfor %}
{% if d.linked_cases %}<h2>{{ t.linked }}</h2><ul>{% for c in d.linked_cases %}
<li>{{ c.reference }} ({{ c.category }}, {{ c.status }})</li>{% endfor %}</ul>{% endif %}
{% if d.withheld %}<h2>{{ t.withheld }} ({{ d.withheld|length }})</h2><p>{{ t.withheld_intro }}</p><ul>
{% for w in d.withheld %}<li>{{ w.received_at }} · {{ t.case }} {{ w.case }}</li>{% endfor %}</ul>{% endif %}

<h2>{{ t.views }}</h2>
<table id="views"><tr><th>{{ t.when }}</th><th>{{ t.who }}</th><th>{{ t.what }}</th></tr>
{% for v in d.views %}<tr><td>{{ v.at }}</td><td>{{ v.who }}</td><td>{{ v.kind }} {{ v.what or '' }}
{% if v.email %}#{{ v.email }}{% endif %} {{ v.case or '' }}</td></tr>
{% else %}<tr><td colspan="3">{{ t.none }}</td></tr>{% endfor %}</table>

<h2>{{ t.events }}</h2>
<table id="events"><tr><th>{{ t.when }}</th><th>{{ t.who }}</th><th>{{ t.what }}</th></tr>
{% for e in d.events %}<tr><td>{{ e.at }}</td><td>{{ e.actor }}</td><td>{{ e.kind }}{% if e.email %} #{{ e.email }}{% endif %}</td></tr>{% endfor %}</table>
{% if d.missing_files %}<h2>{{ t.missing }}</h2><ul>{% for f in d.missing_files %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}
</body></html>
"""
