"""One module per tab: layout and event wiring only; the work is done by the handlers."""

# Every inference event shares one worker: the model runs one image at a time anyway, and
# with trigger_mode="always_last" a busy worker means only the newest drawing runs next.
INFERENCE = {"concurrency_id": "inference", "concurrency_limit": 1}
PRIVATE = {"api_visibility": "private"}  # the page's own events; the API is in demo/ui.py

# After a result has arrived, error toasts from earlier requests are stale: close them
# (warnings and notices stay).
CLOSE_TOASTS = "() => document.querySelectorAll('.toast-body.error .toast-close').forEach((b) => b.click())"
