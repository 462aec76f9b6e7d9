"""WSGI entry point: `gunicorn app:app`; `python app.py` serves for development."""
from berth import create_app

app = create_app()

if __name__ == "__main__":
    settings = app.config["BERTH_SETTINGS"]
    app.run(host=settings.host, port=settings.port, threaded=True)
