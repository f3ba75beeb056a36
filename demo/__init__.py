"""The web app: Gradio layout (``ui.py``, ``tabs/``) over plain handler functions.

Nothing here imports torch at module level: the library is imported on first use, so
``python app.py`` serves its page before the model stack has loaded.
"""
