"""Does checking an API key take the same time whatever is wrong with it?

    python benchmarks/bench_keys.py             # 2000 checks of each kind
    python benchmarks/bench_keys.py --smoke     # 50 of each (CI)

``Keys.verify`` is meant to do the same work for a malformed key, a well-formed key with an
unknown prefix and a real prefix with a wrong secret (one store read by prefix, one HMAC, one
constant-time comparison), so that timing tells a guesser nothing about which prefixes exist.
The audit of issue 17 measured 3.1 / 5.0 / 5.6 ms through the API: a malformed key skipped the
store read. This times the three kinds (and a valid key, for context) interleaved on one data
dir with a few hundred keys, and prints each median and its ratio to the wrong-secret case;
ratios near 1.0 mean no kind stands out. No assertion on time: machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved  # noqa: E402

from gempix.errors import GemPixError  # noqa: E402
from gempix.privacy.identity import LOCAL_USER  # noqa: E402
from gempix.service import Studio  # noqa: E402
from gempix.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=2000, help="checks of each kind")
    parser.add_argument("--keys", type=int, default=300, help="keys in the store")
    parser.add_argument("--smoke", action="store_true", help="a quick run for CI")
    args = parser.parse_args()
    checks, count = (50, 20) if args.smoke else (args.checks, args.keys)
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.load({}, data_dir=folder, max_keys_per_user=1000)
        with Studio(settings) as studio:
            made = [studio.keys.create(LOCAL_USER)[0] for _ in range(count)]
            valid = made[len(made) // 2]
            prefix = valid.split("_")[1]
            kinds = {
                "malformed": "gpx_not-a-key",
                "unknown prefix": f"gpx_{'f' * 12}_{'A' * 43}",
                "wrong secret": f"gpx_{prefix}_{'A' * 43}",
                "valid": valid,
            }

            def check(key: str):
                def run() -> None:
                    with contextlib.suppress(GemPixError):
                        studio.keys.verify(key)

                return run

            for key in kinds.values():  # warm the caches once
                check(key)()
            seconds = interleaved(checks, **{name: check(key) for name, key in kinds.items()})
    base = seconds["wrong secret"]
    report = {
        name: {"median_us": round(value * 1e6, 1), "ratio_to_wrong_secret": round(value / base, 2)}
        for name, value in seconds.items()
    }
    print(json.dumps({"checks": checks, "keys": count, "results": report}, indent=2))


if __name__ == "__main__":
    main()
