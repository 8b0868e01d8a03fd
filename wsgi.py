"""WSGI entry point: `gunicorn wsgi:app`."""

from connector.app import create_app

app = create_app()
