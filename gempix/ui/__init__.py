"""The Gradio web front door. Importing it turns Gradio's analytics off before Gradio loads."""

import os

# Privacy: no third-party telemetry, whatever the surrounding environment says.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
