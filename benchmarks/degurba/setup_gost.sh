#!/usr/bin/env bash
# GOSTurban in its own virtualenv (its dependencies stay out of pari_geo's environment).
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m venv benchmarks/_work/gost-venv
benchmarks/_work/gost-venv/bin/pip install -q GOSTurban==1.0.0 GOSTrocks geojson geopy rasterstats psutil
benchmarks/_work/gost-venv/bin/python -c "import GOSTurban.UrbanRaster; print('GOSTurban ok')"
