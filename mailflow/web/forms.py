"""The desk's forms; Flask-WTF adds and checks the CSRF token of each."""

from __future__ import annotations

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class LoginForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=100)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class LogoutForm(FlaskForm):
    pass


class LanguageForm(FlaskForm):
    language = SelectField(
        lazy_gettext("Language"), choices=[("nl", "Nederlands"), ("fr", "Français"), ("en", "English")]
    )


class DecideForm(FlaskForm):
    """One form for every triage outcome; ``outcome`` says which button was used."""

    outcome = HiddenField(validators=[DataRequired()])  # accept | choose | split | spam | hand
    category = SelectField("Category", validate_choice=False, validators=[Optional()])
    action = SelectField("Action", validate_choice=False, validators=[Optional()])
    # split: one "category" or "category:action" per line
    parts = TextAreaField("Requests", validators=[Optional(), Length(max=2000)])
    reply_text = TextAreaField("Reply", validators=[Optional(), Length(max=20000)])
    # accept: a sender that failed DMARC may not be who it claims; a person must say they checked.
    sender_checked = BooleanField("I checked the sender")


class ReleaseForm(FlaskForm):
    pass


class NewUserForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=50)])
    role = SelectField("Role", choices=["staff", "auditor", "admin"])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=10, max=1000)])


NOTE_MAX = 2000  # characters: a note says what happened, the documents are in the case's emails
# A browser sends each line end of a textarea as two characters; the note's own length is checked
# once they are one (``cases.clean_note``).
NOTE_SENT_MAX = 2 * NOTE_MAX
_NOTE_SENT = Length(max=NOTE_SENT_MAX)


class NoteForm(FlaskForm):
    text = TextAreaField(lazy_gettext("Note"), validators=[DataRequired(), _NOTE_SENT])


class CaseStateForm(FlaskForm):
    """Closing or reopening a case, with a note if the person wants to say why."""

    text = TextAreaField(lazy_gettext("Note (optional)"), validators=[Optional(), _NOTE_SENT])
