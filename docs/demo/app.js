// Generate images with the exported decoder: z ~ N(0, t^2 I) and a one-hot label in,
// images out. The model's shapes and class names come from model/cvae.json.
"use strict";

const ROWS = 4, COLS = 4, SCALE = 3, GAP = 2;
const status = document.getElementById("status");
const slider = document.getElementById("temperature");
let info, session, draws = 0;

function gaussian() { // Box-Muller: one standard normal draw
  const u = 1 - Math.random(), v = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

async function draw(cls, button) {
  const n = ROWS * COLS, d = info.latent_dim, k = info.num_classes;
  const [c, h, w] = info.image_shape;
  const t = Number(slider.value);
  const z = new Float32Array(n * d).map(() => gaussian() * t);
  const label = new Float32Array(n * k);
  for (let i = 0; i < n; i++) label[i * k + cls] = 1;
  const out = await session.run({
    z: new ort.Tensor("float32", z, [n, d]),
    label: new ort.Tensor("float32", label, [n, k]),
  });
  const pixels = out.image.data;
  const canvas = document.getElementById("grid");
  canvas.width = COLS * (w * SCALE + GAP) + GAP;
  canvas.height = ROWS * (h * SCALE + GAP) + GAP;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "black";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const image = ctx.createImageData(w * SCALE, h * SCALE);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h * SCALE; y++) {
      for (let x = 0; x < w * SCALE; x++) {
        const p = Math.floor(y / SCALE) * w + Math.floor(x / SCALE), o = 4 * (y * w * SCALE + x);
        for (let ch = 0; ch < 3; ch++) {
          const value = pixels[i * c * h * w + (c === 3 ? ch : 0) * h * w + p];
          image.data[o + ch] = Math.round(255 * Math.min(1, Math.max(0, value)));
        }
        image.data[o + 3] = 255;
      }
    }
    ctx.putImageData(image, GAP + (i % COLS) * (w * SCALE + GAP),
                     GAP + Math.floor(i / COLS) * (h * SCALE + GAP));
  }
  window.lastImages = Array.from(pixels); // for tests: what the decoder returned
  document.querySelectorAll("#classes button").forEach((b) => b.classList.remove("active"));
  button.classList.add("active");
  draws += 1;
  status.dataset.drawn = String(cls);
  status.dataset.draws = String(draws);
  status.dataset.state = "drawn";
  status.textContent = `${n} new samples of class ${button.textContent} at temperature ${t.toFixed(2)}`;
}

// What to do, in words, when the page cannot start: the usual causes have plain remedies.
const BUILD = "run \"python scripts/build_demo.py\" (it needs npm), then reload";

async function load(path) {
  let response;
  try {
    response = await fetch(path);
  } catch (error) {
    throw new Error(`cannot load ${path} (${error.message}); serve the page over HTTP`);
  }
  if (!response.ok) throw new Error(`${path} is missing (HTTP ${response.status}): ${BUILD}`);
  return response;
}

async function main() {
  if (window.location.protocol === "file:") {
    // Browsers refuse fetch() and WebAssembly to pages opened from a file.
    throw new Error("this page was opened from a file, and browsers do not let such a page load"
      + " its model. Serve it instead: \"python -m http.server -d site\" (the built docs; then open"
      + " http://localhost:8000/try-it/) or \"python -m http.server -d docs/demo\"");
  }
  if (typeof ort === "undefined") throw new Error(`onnxruntime-web (vendor/ort.wasm.min.js) is missing: ${BUILD}`);
  info = await (await load("model/cvae.json")).json();
  ort.env.wasm.wasmPaths = new URL("vendor/", window.location.href).href; // an absolute URL: the loader is imported dynamically
  ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a plain server lacks
  const model = new Uint8Array(await (await load("model/decoder.onnx")).arrayBuffer());
  session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
  const names = info.class_names || Array.from({ length: info.num_classes }, (_, i) => String(i));
  const buttons = document.getElementById("classes");
  names.forEach((name, cls) => {
    const button = document.createElement("button");
    button.textContent = name;
    button.dataset.class = String(cls);
    button.addEventListener("click", () => draw(cls, button).catch(fail));
    buttons.appendChild(button);
  });
  slider.addEventListener("input", () => {
    document.getElementById("temperature-value").textContent = Number(slider.value).toFixed(2);
  });
  status.dataset.state = "ready";
  status.textContent = "ready: pick a class";
}

function fail(error) {
  status.dataset.state = "error";
  status.textContent = `error: ${error.message || error}`;
}

main().catch(fail);
