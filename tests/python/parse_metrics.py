"""Parses a Prometheus text exposition from stdin with the reference implementation's parser
(prometheus_client, independent of the server's Rust registry) and prints what it read as JSON:

    {"families": {name: type}, "samples": [[name, {label: value}, value], ...]}

tests/tests/metrics.rs drives it with target/pyenv/bin/python; a malformed exposition makes the
parser raise, and this script exit non-zero.
"""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> None:
    families = {}
    samples = []
    for family in text_string_to_metric_families(sys.stdin.read()):
        families[family.name] = family.type
        for sample in family.samples:
            samples.append([sample.name, sample.labels, sample.value])
    json.dump({"families": families, "samples": samples}, sys.stdout)


if __name__ == "__main__":
    main()
