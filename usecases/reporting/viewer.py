"""The interactive 3-D structure view: 3Dmol.js, inlined, showing a PDB coloured by pLDDT.

The library is the npm package ``3dmol`` (``VERSION``), its ``build/3Dmol-min.js`` kept in
``vendor/`` beside its BSD-3-Clause license (``vendor/README.md``: where it came from, how to
refresh it). The report embeds it in the page, so the view opens offline and fetches nothing;
the Markdown report keeps the static figure. After drawing, each view writes the number of
pixels it drew into its element's ``data-drawn-pixels`` (what the browser test reads).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from usecases.colabfold_spike.pdb import read_ca_trace
from usecases.errors import DataError
from usecases.reporting.blocks import Note, Viewer3D
from usecases.reporting.runs import Run, best_with_pdb

VERSION = "2.5.5"
LIBRARY = Path(__file__).with_name("vendor") / "3Dmol-min.js"
LIBRARY_SHA256 = "f7cc78921ae72e7623e89cdd111434f58c2efddd2ffda1cd212644b406fb8016"
# pLDDT bands as AlphaFold colours them (the static figure's PLDDT_BANDS): lower bound, colour
BANDS = ((90.0, "#0053D6"), (70.0, "#65CBF3"), (50.0, "#FFDB13"), (0.0, "#FF7D45"))

_DRAW = """(function () {
  var el = document.getElementById(%(id)s);
  var viewer = $3Dmol.createViewer(el, {backgroundColor: "white"});
  var bands = %(bands)s;
  var scale = %(scale)s;
  function colour(atom) {
    var b = atom.b * scale;
    for (var i = 0; i < bands.length; i++) { if (b >= bands[i][0]) { return bands[i][1]; } }
    return bands[bands.length - 1][1];
  }
  viewer.addModel(%(pdb)s, "pdb");
  viewer.setStyle({}, {cartoon: {colorfunc: colour}, sphere: {radius: 0.4, colorfunc: colour}});
  viewer.zoomTo();
  viewer.render();
  var image = new Image();
  image.onload = function () {
    var canvas = document.createElement("canvas");
    canvas.width = image.width; canvas.height = image.height;
    var ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0);
    var px = ctx.getImageData(0, 0, canvas.width, canvas.height).data, drawn = 0;
    for (var k = 0; k < px.length; k += 4) {
      if (px[k + 3] > 0 && (px[k] < 250 || px[k + 1] < 250 || px[k + 2] < 250)) { drawn++; }
    }
    el.setAttribute("data-drawn-pixels", String(drawn));
  };
  image.src = viewer.pngURI();
})();"""


def library_js() -> str:
    """The vendored 3Dmol.js source; DataError when the file is not the pinned one."""
    data = LIBRARY.read_bytes()
    if hashlib.sha256(data).hexdigest() != LIBRARY_SHA256:
        raise DataError(
            f"{LIBRARY} is not 3Dmol.js {VERSION} (sha256 differs); restore it with "
            "bash scripts/vendor_3dmol.sh"
        )
    return data.decode("utf-8")


def draw_script(viewer: Viewer3D) -> str:
    """The inline script that draws ``viewer`` into its element (needs ``library_js`` first)."""
    return _DRAW % {
        "id": json.dumps(viewer.id),
        "bands": json.dumps([list(b) for b in BANDS]),
        "scale": json.dumps(viewer.plddt_scale),
        "pdb": json.dumps(viewer.pdb).replace("</", "<\\/"),
    }


def structure_viewer(run: Run, *, index: int = 0) -> Viewer3D | Note:
    """The best model's PDB of a colabfold_spike run as an interactive view, or a Note why not."""
    vid = f"viewer-structure-{index}"
    found = best_with_pdb(run)
    if found is None:
        return Note(vid, f"3-D view of {run.record.run_id}: skipped, no PDB file found.")
    best, pdb = found
    b_factors = [b for _, b in read_ca_trace(pdb)]  # the one PDB reader; bad lines skipped
    if not b_factors:
        return Note(vid, f"3-D view of {run.record.run_id}: skipped, {pdb.name} has no CA atom.")
    scale = 100.0 if max(b_factors) <= 1.0 else 1.0  # pLDDT stored as 0..1
    text = pdb.read_text(errors="replace")
    caption = (
        f"{best.name} ({pdb.name}) of {run.label}: drag to rotate, scroll to zoom; "
        f"coloured by pLDDT from the B-factor column (3Dmol.js {VERSION}, embedded)."
    )
    return Viewer3D(vid, f"Interactive structure ({run.record.run_id})", caption, text, scale)


def notebook_view(pdb: str | Path, *, width: int = 640, height: int = 420):
    """The same view for a Jupyter notebook: an ``IPython.display.HTML`` of ``pdb`` (a path)."""
    from IPython.display import HTML

    path = Path(pdb)
    viewer = Viewer3D(
        "viewer-" + hashlib.sha256(str(path).encode()).hexdigest()[:12],
        "",
        "",
        path.read_text(errors="replace"),
        1.0,
    )
    style = f"width:{width}px;height:{height}px;position:relative"
    return HTML(
        f'<div id="{viewer.id}" style="{style}"></div>'
        f"<script>{library_js()}</script><script>{draw_script(viewer)}</script>"
    )
