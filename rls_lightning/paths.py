"""Where the project's shipped files live, found from this package's location (the repository's
``checkpoints/demo64``), so the defaults work from any working directory. The one place every layer reads
them from."""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = PROJECT_ROOT / "checkpoints" / "demo64"
DEMO_GENERATOR = DEMO_DIR / "generator.pt"
DEMO_FLOW = DEMO_DIR / "flow.pt"
