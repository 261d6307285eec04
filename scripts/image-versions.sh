#!/bin/bash
# scripts/image-versions.sh IMAGE - the table of what is inside an image, read
# from the image itself (envpin run --gpus none): Python, PyTorch and the CUDA,
# cuDNN and NCCL it carries, JupyterLab and its plugins, astropy, numpy,
# matplotlib, sshd, tmux, and what envpin's programs link to.  Markdown on
# stdout (docs/reference-images.md quotes it).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
ENVPIN=${ENVPIN:-$top/envpin}
img=${1:?usage: scripts/image-versions.sh IMAGE}
# shellcheck disable=SC2016
exec "$ENVPIN" run --gpus none "$img" -- sh -c '
printf "| component | version |\n|---|---|\n"
printf "| Debian | %s |\n" "$(cat /etc/debian_version)"
python3 - <<PY
import importlib, importlib.metadata as md
def v(dist):
    try:
        return md.version(dist)
    except Exception:
        return "-"
print("| python | %s |" % __import__("platform").python_version())
try:
    import torch
    print("| torch | %s |" % torch.__version__)
    print("| CUDA (torch.version.cuda) | %s |" % torch.version.cuda)
    print("| cuDNN (torch.backends.cudnn.version()) | %s |" % torch.backends.cudnn.version())
    try:
        print("| NCCL (torch.cuda.nccl.version()) | %s |" % ".".join(map(str, torch.cuda.nccl.version())))
    except Exception as e:
        print("| NCCL | %s |" % e)
except Exception as e:
    print("| torch | %s |" % e)
for d in ("nvidia-cuda-runtime-cu12", "nvidia-cudnn-cu12", "nvidia-nccl-cu12", "nvidia-cublas-cu12",
          "jupyterlab", "jupyter_server", "ipykernel", "ipywidgets", "jupyterlab_widgets", "ipympl",
          "ipyaladin", "anywidget", "matplotlib", "astropy", "numpy", "pip"):
    print("| %s | %s |" % (d, v(d)))
PY
if command -v jupyter >/dev/null 2>&1; then
	jupyter labextension list 2>&1 | sed -n "s/^ *\([^ ]*\) v\([^ ]*\) .*enabled.*/| labextension \1 | \2 |/p"
fi
printf "| sshd | %s |\n" "$( (/usr/sbin/sshd -V 2>&1 || true) | head -1)"
printf "| tmux | %s |\n" "$(tmux -V 2>/dev/null || echo -)"
printf "| cfitsio (libcfitsio10) | %s |\n" "$(dpkg-query -W -f "\${Version}" libcfitsio10 2>/dev/null || echo -)"
printf "| source-extractor | %s |\n" "$(dpkg-query -W -f "\${Version}" source-extractor 2>/dev/null || echo -)"
printf "| ssh host keys in the image | %s |\n" "$(ls /etc/ssh/ssh_host_* 2>/dev/null | wc -l)"
for p in /opt/envpin/bin/*; do
	printf "| ldd %s | %s |\n" "${p##*/}" "$(ldd "$p" | awk "\$3 ~ /^\\// { print \$3 }" | xargs -n1 dirname 2>/dev/null | sort -u | paste -sd, -)"
done
'
