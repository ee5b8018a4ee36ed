"""Run by tests/distill/test_launch.py under torchrun: the launcher's entry point, with every rank writing down
the cache items it trained on (``WORK_DIR/batches-<rank>.json``, one list per micro-batch)."""

import json
import os
import sys
from pathlib import Path

from delta_diff.distill import launch, trainer
from delta_diff.distill.batches import CachedBatches


class RecordingBatches(CachedBatches):
    seen: list[list[int]] = []

    def batch(self, index, generator):
        RecordingBatches.seen.append(index.tolist())
        return super().batch(index, generator)


if __name__ == "__main__":
    trainer.CachedBatches = RecordingBatches  # the name distill_student builds its batch source from
    launch.main(sys.argv[1])
    rank = int(os.environ["RANK"])
    (Path(sys.argv[1]) / f"batches-{rank}.json").write_text(json.dumps(RecordingBatches.seen))
