// The lineage picture's controls: direction, depth and the as-of slider fetch the picture again.
// The server renders (and escapes) the fragment; it is parsed as a document, not assigned as markup.
function redraw() {
  const form = document.getElementById("gctl");
  if (!form) return;
  const params = new URLSearchParams(new FormData(form));
  const slider = document.getElementById("asof");
  const label = document.getElementById("asof-label");
  if (slider) {
    if (slider.value === slider.max) { params.delete("as_of"); label.textContent = "now"; }
    else { params.set("as_of", slider.value); label.textContent = new Date(Number(slider.value)).toISOString(); }
  }
  const depth = params.get("depth");
  if (!depth || Number(depth) < 1 || Number(depth) > 20) return;  // an empty or out-of-range box: keep the picture
  fetch("/ui/graph?" + params.toString(), {credentials: "same-origin"})
    .then((r) => r.ok ? r.text() : Promise.reject(r.status))
    .then((text) => {
      const doc = new DOMParser().parseFromString(text, "text/html");
      const graph = document.getElementById("graph");
      graph.replaceChildren(...doc.body.childNodes);
      graph.dataset.asof = params.get("as_of") || "now";
    })
    .catch(() => {});
}
document.addEventListener("input", (e) => { if (e.target.closest("#gctl")) redraw(); });
