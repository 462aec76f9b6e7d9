"""Marshmallow schemas for what the pages' own forms send (the rest reuse the API's schemas)."""
from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

MIN_PASSWORD = 10


class FormSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # csrf_token, the submit button


class SignupForm(FormSchema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, validate=validate.Length(
        min=MIN_PASSWORD, max=1000, error=f"Passwords are at least {MIN_PASSWORD} characters long."))
    password_again = fields.String(required=True)

    @validates_schema
    def _same_password(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("password") != data.get("password_again"):
            raise ValidationError("The two passwords differ.", "password_again")


class LoginForm(FormSchema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1000))
