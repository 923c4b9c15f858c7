"""Where the embedded demo model lives (relative to the repository root, where the commands are run)."""
from pathlib import Path

DEMO_DIR = Path("checkpoints/demo-faces64")
DEMO_GENERATOR = DEMO_DIR / "generator.pt"
DEMO_FLOW = DEMO_DIR / "flow.pt"
