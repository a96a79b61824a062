"""Sign-in and account forms. Field names are part of the public surface (email, password, code)."""

from __future__ import annotations

from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp

from patient_online.web.fields import Choice
from patient_online.web.input import Form


class SignInForm(Form):
    email = EmailField("Email address", validators=[DataRequired("Enter your email address")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password")])


class CodeForm(Form):
    code = StringField(
        "Security code",
        validators=[
            DataRequired("Enter the 6-digit security code"),
            Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message="Enter the security code as 6 digits, like 123456"),
        ],
    )


class RegisterForm(Form):
    email = EmailField(
        "Email address",
        validators=[
            DataRequired("Enter your email address"),
            Email("Enter an email address in the correct format, like name@example.com"),
            Length(max=254, message="Email address must be 254 characters or fewer"),
        ],
    )
    password = PasswordField("Create a password", validators=[DataRequired("Create a password")])
    mobile = StringField(
        "Mobile phone number (optional)",
        validators=[
            Optional(),
            Regexp(r"^[0-9 +()-]{10,20}$", message="Enter a UK mobile number, like 07700 900 982"),
        ],
    )


class EmailForm(Form):
    email = EmailField(
        "Email address",
        validators=[
            DataRequired("Enter your email address"),
            Email("Enter an email address in the correct format, like name@example.com"),
        ],
    )


class ResetForm(Form):
    email = EmailField("Email address", validators=[DataRequired("Enter your email address")])
    code = StringField("Security code", validators=[DataRequired("Enter the security code from the email")])
    password = PasswordField("New password", validators=[DataRequired("Enter a new password")])


class ChangePasswordForm(Form):
    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password")])
    password = PasswordField("New password", validators=[DataRequired("Enter a new password")])


class TemporaryPasswordForm(Form):
    """The temporary password someone else chose, and the person's own new one."""

    current_password = PasswordField("Temporary password", validators=[DataRequired("Enter your temporary password")])
    password = PasswordField("Your new password", validators=[DataRequired("Enter a new password")])


class EmailChangeForm(Form):
    """A new email address, with the current password: an open session alone cannot move the account."""

    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password")])
    email = EmailField(
        "New email address",
        validators=[
            DataRequired("Enter your new email address"),
            Email("Enter an email address in the correct format, like name@example.com"),
            Length(max=254, message="Email address must be 254 characters or fewer"),
        ],
    )


class SecondFactorChoiceForm(Form):
    second_factor = Choice(
        "How do you want to get security codes?",
        choices=[("totp", "With an authenticator app (most secure)"), ("email", "By email")],
        message="Select how you want to get security codes",
    )
