"""Send a script's stdout/stderr and Python logging to the rule's log file."""
import logging
import sys


def to_log(snakemake) -> None:
    if snakemake.log:
        stream = open(snakemake.log[0], "w", buffering=1)
        sys.stdout = sys.stderr = stream
        logging.basicConfig(stream=stream, level=logging.INFO, force=True,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
