"""Start the GemPix web app: `python app.py` is `gempix serve` (settings from env vars)."""

from gempix.cli import main

if __name__ == "__main__":
    main(["serve"])
