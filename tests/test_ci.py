"""CI must run exactly the README's test command, so what CI checks is what users run."""

import re

from tests.conftest import PROJECT_ROOT


def test_ci_runs_the_readme_test_command():
    readme = (PROJECT_ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", readme)
    test_command = next(c for c in commands if "pytest" in c)
    ci_lines = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
