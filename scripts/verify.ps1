# Every check `make test` runs, on Windows: ruff lint and format, mypy --strict, the import
# layering, bandit, the generated files' freshness, and the tests with coverage (floor: 90%, pyproject.toml).
# Sets up .venv (or $env:VENV) first when it is missing or older than pyproject.toml.
#   powershell -ExecutionPolicy Bypass -File scripts\verify.ps1
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
$venv = if ($env:VENV) { $env:VENV } else { ".venv" }
$py = Join-Path $venv "Scripts\python.exe"
$stamp = Join-Path $venv ".installed"

function Invoke-Step {
    Write-Host "+ python $args"
    & $py @args
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

$stale = -not (Test-Path $stamp) -or
    ((Get-Item "pyproject.toml").LastWriteTime -gt (Get-Item $stamp).LastWriteTime)
if (-not (Test-Path $py) -or $stale) {
    $python = if ($env:PYTHON) { $env:PYTHON } else { "python" }
    & $python -m venv $venv
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    Invoke-Step -m pip install --quiet --upgrade pip
    Invoke-Step -m pip install --quiet -e ".[dev]"
    New-Item -ItemType File -Force $stamp | Out-Null
}

Invoke-Step -m ruff check src tests bench scripts/generate-types scripts/generate-docs scripts/demo
Invoke-Step -m ruff format --check src tests bench scripts/generate-types scripts/generate-docs scripts/demo
Invoke-Step -m mypy
Invoke-Step -m mypy scripts/generate-types
Invoke-Step -m mypy scripts/generate-docs
Invoke-Step -m mypy scripts/demo
Invoke-Step -c "from importlinter.cli import lint_imports_command; lint_imports_command()"
Invoke-Step -m bandit --quiet -c pyproject.toml -r src
Invoke-Step scripts/generate-types --check
Invoke-Step scripts/generate-docs --check
Invoke-Step -m pytest --cov --cov-report=term
