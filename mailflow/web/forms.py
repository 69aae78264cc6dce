"""The desk's forms; Flask-WTF adds and checks the CSRF token of each."""

from __future__ import annotations

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from mailflow.storage.desk_models import ROLES
from mailflow.web.accounts import MIN_PASSWORD


def _required() -> DataRequired:
    # WTForms' own messages are English: each validator carries one of the desk's messages.
    return DataRequired(message=lazy_gettext("Fill this in."))


def _at_most(characters: int) -> Length:
    return Length(max=characters, message=lazy_gettext("At most %(max)d characters."))


class LoginForm(FlaskForm):
    username = StringField(lazy_gettext("User name"), validators=[_required(), _at_most(100)])
    password = PasswordField(lazy_gettext("Password"), validators=[_required(), _at_most(1000)])


class LogoutForm(FlaskForm):
    pass


class LanguageForm(FlaskForm):
    language = SelectField(
        lazy_gettext("Language"),
        choices=[
            SelectChoice("nl", "Nederlands"),
            SelectChoice("fr", "Français"),
            SelectChoice("en", "English"),
        ],
    )


class DecideForm(FlaskForm):
    """One form for every triage outcome; ``outcome`` says which button was used."""

    outcome = HiddenField(validators=[_required()])  # accept | choose | split | spam | hand
    category = SelectField(lazy_gettext("Category"), validate_choice=False, validators=[Optional()])
    action = SelectField(lazy_gettext("Action"), validate_choice=False, validators=[Optional()])
    # split: repeated part_category / part_action menus, read from the request (see triage._parts)
    reply_text = TextAreaField(lazy_gettext("Reply"), validators=[Optional(), _at_most(20000)])
    # accept: a sender that failed DMARC may not be who it claims; a person must say they checked.
    sender_checked = BooleanField(lazy_gettext("I checked the sender"))


class ReleaseForm(FlaskForm):
    pass


def _new_password(label: str) -> PasswordField:
    return PasswordField(
        label,
        validators=[
            _required(),
            Length(
                min=MIN_PASSWORD,
                message=lazy_gettext("A password has at least %(count)s characters.", count=MIN_PASSWORD),
            ),
            _at_most(1000),
        ],
    )


class NewUserForm(FlaskForm):
    username = StringField(lazy_gettext("User name"), validators=[_required(), _at_most(50)])
    role = SelectField(lazy_gettext("Role"), choices=list(ROLES))
    password = _new_password(lazy_gettext("Password"))


class AccountChangeForm(FlaskForm):
    """Disable, enable or unlock an account: which one the address says; the CSRF token is all."""


class SetPasswordForm(FlaskForm):
    """An administrator sets someone's new password, typed twice."""

    password = _new_password(lazy_gettext("New password"))
    confirm = PasswordField(
        lazy_gettext("New password again"),
        validators=[_required(), EqualTo("password", message=lazy_gettext("The two passwords differ."))],
    )


class RoleForm(FlaskForm):
    role = SelectField(lazy_gettext("Role"), choices=list(ROLES))


NOTE_MAX = 2000  # characters: a note says what happened, the documents are in the case's emails
# A browser sends each line end of a textarea as two characters; the note's own length is checked
# once they are one (``cases.clean_note``).
NOTE_SENT_MAX = 2 * NOTE_MAX
_NOTE_SENT = _at_most(NOTE_SENT_MAX)


class NoteForm(FlaskForm):
    text = TextAreaField(lazy_gettext("Note"), validators=[_required(), _NOTE_SENT])


class CaseStateForm(FlaskForm):
    """Closing or reopening a case, with a note if the person wants to say why."""

    text = TextAreaField(lazy_gettext("Note (optional)"), validators=[Optional(), _NOTE_SENT])
