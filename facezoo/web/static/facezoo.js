// facezoo in the browser: detect, align and analyse faces with onnxruntime-web; no photo leaves the page.
//
//   const fz = await facezoo.create({ tasks: ["age-gender", "expression"] });
//   const result = await fz.analyze(imageOrCanvasOrVideoOrUrlOrBlob);
//   // {faces: [{face: {box, score, landmarks}, "age-gender": {...}, ...}], captions: [...], image: {width, height}}
//
// The models and their framing come from a manifest (`<base>manifest.json`), written by `facezoo
// export-web` or served by `facezoo serve` at /web/. Everything the Python path does between the
// decoded photo and the result is repeated here with the same arithmetic: Pillow's resampling
// (bilinear resize with its fixed-point filter, reduce, affine warp), YuNet decoding and NMS,
// MTCNN's O-Net landmark refinement, the five-point alignment and each task's decoding. Only image
// decoding is the browser's own. See docs/browser.md.
"use strict";

(function (root) {
  // ---------------------------------------------------------------------------------------------
  // Images: {data: Uint8Array (RGB, row-major, 3 bytes a pixel), width, height}
  // ---------------------------------------------------------------------------------------------
  function rgbImage(width, height, data) {
    return { width, height, data: data || new Uint8Array(width * height * 3) };
  }

  function fromRGBA(rgba, width, height) {
    const out = new Uint8Array(width * height * 3);
    for (let i = 0, j = 0; i < out.length; i += 3, j += 4) {
      out[i] = rgba[j];
      out[i + 1] = rgba[j + 1];
      out[i + 2] = rgba[j + 2];
    }
    return rgbImage(width, height, out);
  }

  // Python's round(): halves to even.
  function roundHalfEven(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  // Pillow's bilinear resampling (Resample.c): a triangle filter stretched by the scale when
  // shrinking (antialiased), coefficients in 22-bit fixed point, two passes rounded to 8 bits.
  const PRECISION_BITS = 22;
  function resampleCoefficients(inSize, in0, in1, outSize) {
    const scale = Math.fround(in1 - in0) / outSize;
    const filterScale = Math.max(scale, 1.0);
    const support = filterScale;
    const ksize = Math.ceil(support) * 2 + 1;
    const bounds = new Int32Array(outSize * 2);
    const kk = new Int32Array(outSize * ksize);
    const weights = new Float64Array(ksize);
    for (let xx = 0; xx < outSize; xx++) {
      const center = in0 + (xx + 0.5) * scale;
      let ww = 0.0;
      const ss = 1.0 / filterScale;
      let xmin = Math.trunc(center - support + 0.5);
      if (xmin < 0) xmin = 0;
      let xmax = Math.trunc(center + support + 0.5);
      if (xmax > inSize) xmax = inSize;
      xmax -= xmin;
      for (let x = 0; x < xmax; x++) {
        const t = Math.abs((x + xmin - center + 0.5) * ss);
        const w = t < 1.0 ? 1.0 - t : 0.0;
        weights[x] = w;
        ww += w;
      }
      for (let x = 0; x < xmax; x++) {
        const k = ww !== 0.0 ? weights[x] / ww : weights[x];
        kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS)) : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
      }
      bounds[xx * 2] = xmin;
      bounds[xx * 2 + 1] = xmax;
    }
    return { ksize, bounds, kk };
  }

  function clip8(ss) {
    const v = Math.floor(ss / (1 << PRECISION_BITS));
    return v < 0 ? 0 : v > 255 ? 255 : v;
  }

  // Image.resize((width, height), BILINEAR, box=box) of Pillow, exactly.
  function resize(image, width, height, box) {
    box = box || [0, 0, image.width, image.height];
    const b = box.map(Math.fround);
    const needH = width !== image.width || b[0] !== 0 || b[2] !== width;
    const needV = height !== image.height || b[1] !== 0 || b[3] !== height;
    const vert = resampleCoefficients(image.height, b[1], b[3], height);
    const first = vert.bounds[0];
    const last = vert.bounds[height * 2 - 2] + vert.bounds[height * 2 - 1];
    let source = image;
    let rowOffset = 0;
    if (needH) {
      const hor = resampleCoefficients(image.width, b[0], b[2], width);
      const rows = last - first;
      const temp = rgbImage(width, rows);
      const src = image.data;
      for (let yy = 0; yy < rows; yy++) {
        const line = (yy + first) * image.width * 3;
        for (let xx = 0; xx < width; xx++) {
          const xmin = hor.bounds[xx * 2];
          const xmax = hor.bounds[xx * 2 + 1];
          const k = xx * hor.ksize;
          let s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
          for (let x = 0; x < xmax; x++) {
            const p = line + (x + xmin) * 3;
            const w = hor.kk[k + x];
            s0 += src[p] * w;
            s1 += src[p + 1] * w;
            s2 += src[p + 2] * w;
          }
          const o = (yy * width + xx) * 3;
          temp.data[o] = clip8(s0);
          temp.data[o + 1] = clip8(s1);
          temp.data[o + 2] = clip8(s2);
        }
      }
      source = temp;
      rowOffset = first;
    }
    if (!needV) return source === image ? rgbImage(image.width, image.height, image.data.slice()) : source;
    const out = rgbImage(source.width, height);
    const src = source.data;
    const stride = source.width * 3;
    for (let yy = 0; yy < height; yy++) {
      const ymin = vert.bounds[yy * 2] - rowOffset;
      const ymax = vert.bounds[yy * 2 + 1];
      const k = yy * vert.ksize;
      for (let xx = 0; xx < source.width; xx++) {
        let s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
        for (let y = 0; y < ymax; y++) {
          const p = (y + ymin) * stride + xx * 3;
          const w = vert.kk[k + y];
          s0 += src[p] * w;
          s1 += src[p + 1] * w;
          s2 += src[p + 2] * w;
        }
        const o = (yy * source.width + xx) * 3;
        out.data[o] = clip8(s0);
        out.data[o + 1] = clip8(s1);
        out.data[o + 2] = clip8(s2);
      }
    }
    return out;
  }

  // Image.crop((x0, y0, x1, y1)): zeros outside the image.
  function crop(image, x0, y0, x1, y1) {
    const out = rgbImage(x1 - x0, y1 - y0);
    for (let y = Math.max(y0, 0); y < Math.min(y1, image.height); y++) {
      const from = Math.max(x0, 0), to = Math.min(x1, image.width);
      if (to <= from) break;
      out.data.set(image.data.subarray((y * image.width + from) * 3, (y * image.width + to) * 3), ((y - y0) * out.width + from - x0) * 3);
    }
    return out;
  }

  // Image.reduce(factor) (Reduce.c): box means rounded with a 24-bit reciprocal; partial boxes at
  // the right and bottom edges average the pixels they have.
  function reduce(image, factor) {
    const width = Math.ceil(image.width / factor), height = Math.ceil(image.height / factor);
    const out = rgbImage(width, height);
    const multiplierOf = (n) => Math.trunc(Math.fround(4294967296) / Math.fround(256 * n));
    for (let y = 0; y < height; y++) {
      const y0 = y * factor, y1 = Math.min(y0 + factor, image.height);
      for (let x = 0; x < width; x++) {
        const x0 = x * factor, x1 = Math.min(x0 + factor, image.width);
        const n = (y1 - y0) * (x1 - x0);
        const multiplier = multiplierOf(n), amend = Math.floor(n / 2);
        let s0 = amend, s1 = amend, s2 = amend;
        for (let yy = y0; yy < y1; yy++) {
          for (let xx = x0; xx < x1; xx++) {
            const p = (yy * image.width + xx) * 3;
            s0 += image.data[p];
            s1 += image.data[p + 1];
            s2 += image.data[p + 2];
          }
        }
        const o = (y * width + x) * 3;
        out.data[o] = Math.floor((s0 * multiplier) / 16777216) & 255;
        out.data[o + 1] = Math.floor((s1 * multiplier) / 16777216) & 255;
        out.data[o + 2] = Math.floor((s2 * multiplier) / 16777216) & 255;
      }
    }
    return out;
  }

  // Image.transform(size, AFFINE, coeffs, BILINEAR) (Geometry.c): output pixel centre (x + 0.5,
  // y + 0.5) maps to (a0 x' + a1 y' + a2, a3 x' + a4 y' + a5); outside the image is black.
  function affine(image, width, height, a) {
    const out = rgbImage(width, height);
    const src = image.data, w = image.width, h = image.height;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let xin = a[0] * (x + 0.5) + a[1] * (y + 0.5) + a[2];
        let yin = a[3] * (x + 0.5) + a[4] * (y + 0.5) + a[5];
        if (xin < 0.0 || xin >= w || yin < 0.0 || yin >= h) continue;
        xin -= 0.5;
        yin -= 0.5;
        const ix = Math.floor(xin), iy = Math.floor(yin);
        const dx = xin - ix, dy = yin - iy;
        const xa = (ix < 0 ? 0 : ix < w ? ix : w - 1) * 3;
        const xb = (ix + 1 < 0 ? 0 : ix + 1 < w ? ix + 1 : w - 1) * 3;
        const row0 = (iy < 0 ? 0 : iy < h ? iy : h - 1) * w * 3;
        const hasRow1 = iy + 1 >= 0 && iy + 1 < h;
        const row1 = (iy + 1) * w * 3;
        const o = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) {
          const v1 = src[row0 + xa + c] + (src[row0 + xb + c] - src[row0 + xa + c]) * dx;
          const v2 = hasRow1 ? src[row1 + xa + c] + (src[row1 + xb + c] - src[row1 + xa + c]) * dx : v1;
          out.data[o + c] = Math.trunc(v1 + (v2 - v1) * dy);
        }
      }
    }
    return out;
  }

  // image.convert("L").convert("RGB") of Pillow (ITU-R 601-2 luma in 16-bit fixed point).
  function grayscale(image) {
    const out = rgbImage(image.width, image.height);
    const s = image.data;
    for (let i = 0; i < s.length; i += 3) {
      const l = (s[i] * 19595 + s[i + 1] * 38470 + s[i + 2] * 7471 + 0x8000) >>> 16;
      out.data[i] = out.data[i + 1] = out.data[i + 2] = l;
    }
    return out;
  }

  // ImageOps.expand(image, border): a black frame.
  function expand(image, border) {
    const out = rgbImage(image.width + 2 * border, image.height + 2 * border);
    for (let y = 0; y < image.height; y++) {
      out.data.set(image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3), ((y + border) * out.width + border) * 3);
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Alignment (facezoo/detection/align.py)
  // ---------------------------------------------------------------------------------------------
  const TEMPLATES = {
    arcface: { side: 112, points: [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]] },
    dlib: { side: 150, points: [[49.4, 47.1], [103.6, 46.9], [75.8, 80.8], [52.7, 104.0], [100.4, 103.5]] },
    "dlib-chip": {
      side: 150,
      points: [[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677], [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242], [0.4901123135679, 0.6277975316475]].map(([x, y]) => [((0.25 + x) / 1.5) * 150, ((0.25 + y) / 1.5) * 150]),
    },
  };

  // Least-squares similarity mapping src onto dst (Umeyama without reflection; in 2-D the closed form).
  function estimateSimilarity(src, dst) {
    const n = src.length;
    let sx = 0, sy = 0, dx = 0, dy = 0;
    for (let i = 0; i < n; i++) {
      sx += src[i][0]; sy += src[i][1]; dx += dst[i][0]; dy += dst[i][1];
    }
    sx /= n; sy /= n; dx /= n; dy /= n;
    let variance = 0, a = 0, b = 0;
    for (let i = 0; i < n; i++) {
      const x = src[i][0] - sx, y = src[i][1] - sy, u = dst[i][0] - dx, v = dst[i][1] - dy;
      variance += x * x + y * y;
      a += u * x + v * y;
      b += v * x - u * y;
    }
    if (variance / n < 1e-12) throw new Error("the landmarks span no area: this face cannot be aligned");
    a /= variance;
    b /= variance;
    return [[a, -b, dx - (a * sx - b * sy)], [b, a, dy - (b * sx + a * sy)]];
  }

  function invertAffine(m) {
    const det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    const i00 = m[1][1] / det, i01 = -m[0][1] / det, i10 = -m[1][0] / det, i11 = m[0][0] / det;
    return [[i00, i01, -(i00 * m[0][2] + i01 * m[1][2])], [i10, i11, -(i10 * m[0][2] + i11 * m[1][2])]];
  }

  // _warp of align.py: box-reduce the sampled region by an integer factor when the face is much
  // larger than the crop, then one bilinear affine warp.
  function warp(image, cropToImage, height, width) {
    let linear = [cropToImage[0][0], cropToImage[0][1], cropToImage[1][0], cropToImage[1][1]];
    let ox = cropToImage[0][2] + 0.5 - (linear[0] * 0.5 + linear[1] * 0.5);
    let oy = cropToImage[1][2] + 0.5 - (linear[2] * 0.5 + linear[3] * 0.5);
    const step = Math.sqrt(Math.abs(linear[0] * linear[3] - linear[1] * linear[2]));
    const factor = step >= 4 ? Math.floor(step / 2) : 1;
    const xs = [], ys = [];
    for (const [u, v] of [[0, 0], [width, 0], [0, height], [width, height]]) {
      xs.push(u * linear[0] + v * linear[1] + ox);
      ys.push(u * linear[2] + v * linear[3] + oy);
    }
    const lowX = Math.floor(Math.min(...xs)) - 2 * factor, lowY = Math.floor(Math.min(...ys)) - 2 * factor;
    const highX = Math.ceil(Math.max(...xs)) + 2 * factor, highY = Math.ceil(Math.max(...ys)) + 2 * factor;
    const x0 = Math.max(0, Math.floor(lowX / factor) * factor), y0 = Math.max(0, Math.floor(lowY / factor) * factor);
    const x1 = Math.min(image.width, highX), y1 = Math.min(image.height, highY);
    if (x0 >= x1 || y0 >= y1) return rgbImage(width, height);
    let region = crop(image, x0, y0, x1, y1);
    ox -= x0;
    oy -= y0;
    if (factor > 1) {
      region = reduce(region, factor);
      linear = linear.map((v) => v / factor);
      ox /= factor;
      oy /= factor;
    }
    return affine(region, width, height, [linear[0], linear[1], ox, linear[2], linear[3], oy]);
  }

  function alignFace(image, landmarks, height, width, scale, templateName) {
    const template = TEMPLATES[templateName];
    if (!template) throw new Error(`unknown alignment template ${templateName}`);
    const side = template.side;
    const target = template.points.map(([x, y]) => [((x - side / 2) * scale + side / 2) * (width / side), ((y - side / 2) * scale + side / 2) * (height / side)]);
    const cropToImage = invertAffine(estimateSimilarity(landmarks, target));
    return { image: warp(image, cropToImage, height, width), cropToImage };
  }

  // ---------------------------------------------------------------------------------------------
  // dlib's 5-point shape predictor (facezoo/detection/shape_predictor.py): the same trees, read from
  // the same safetensors file, in the same float32 arithmetic, so the same whole-pixel points.
  // ---------------------------------------------------------------------------------------------
  const LANDMARKS_IN_DLIB_BOX = [[0.2854, 0.2951], [0.7138, 0.2929], [0.4964, 0.5594], [0.3136, 0.7485], [0.6882, 0.7446]];
  const f32 = Math.fround;

  function readSafetensors(buffer) {
    const view = new DataView(buffer);
    const headerBytes = Number(view.getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerBytes)));
    const types = { F32: Float32Array, U16: Uint16Array, U8: Uint8Array };
    const arrays = {};
    for (const [name, info] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      if (!types[info.dtype]) throw new Error(`the shape predictor's ${name} is ${info.dtype}, which facezoo.js does not read`);
      const [start, end] = info.data_offsets;
      arrays[name] = { data: new types[info.dtype](buffer.slice(8 + headerBytes + start, 8 + headerBytes + end)), shape: info.shape };
    }
    return arrays;
  }

  class ShapePredictor {
    constructor(arrays) {
      const { initial, anchors, deltas, features, thresholds, leaves } = arrays;
      [this.levels, this.trees, this.count, this.parts] = leaves.shape;
      this.splits = this.count - 1;
      this.depth = Math.round(Math.log2(this.count));
      this.pixels = deltas.shape[1];
      Object.assign(this, { initial: initial.data, anchors: anchors.data, deltas: deltas.data, features: features.data, thresholds: thresholds.data, leaves: leaves.data });
    }

    // _similarity_2x2: the rotation and scale taking the mean shape to `shape`, as float32.
    similarity(shape) {
      const n = this.parts, from = this.initial;
      let sx = 0, sy = 0, tx = 0, ty = 0;
      for (let i = 0; i < n; i++) {
        sx += from[2 * i]; sy += from[2 * i + 1]; tx += shape[2 * i]; ty += shape[2 * i + 1];
      }
      sx /= n; sy /= n; tx /= n; ty /= n;
      let spread = 0, cosine = 0, sine = 0;
      for (let i = 0; i < n; i++) {
        const x = from[2 * i] - sx, y = from[2 * i + 1] - sy, u = shape[2 * i] - tx, v = shape[2 * i + 1] - ty;
        spread += x * x + y * y;
        cosine += x * u + y * v;
        sine += x * v - y * u;
      }
      if (spread === 0) return [1, 0, 0, 1];
      return [f32(cosine / spread), f32(-sine / spread), f32(sine / spread), f32(cosine / spread)];
    }

    // The points in an RGB image from dlib's box [left, top, right, bottom] (inclusive).
    predict(image, [left, top, right, bottom]) {
      const { levels, trees, count, splits, depth, pixels, parts } = this;
      const sizeX = right - left, sizeY = bottom - top;
      const shape = Float32Array.from(this.initial);
      const values = new Float32Array(pixels);
      for (let level = 0; level < levels; level++) {
        const [m00, m01, m10, m11] = this.similarity(shape);
        for (let i = 0; i < pixels; i++) {
          const d = (level * pixels + i) * 2, anchor = this.anchors[level * pixels + i];
          const x = f32(f32(f32(m00 * this.deltas[d]) + f32(m01 * this.deltas[d + 1])) + shape[2 * anchor]);
          const y = f32(f32(f32(m10 * this.deltas[d]) + f32(m11 * this.deltas[d + 1])) + shape[2 * anchor + 1]);
          const column = Math.floor(x * sizeX + left + 0.5), row = Math.floor(y * sizeY + top + 0.5);
          if (column >= 0 && column < image.width && row >= 0 && row < image.height) {
            const p = (row * image.width + column) * 3;
            values[i] = Math.floor((image.data[p] + image.data[p + 1] + image.data[p + 2]) / 3);
          } else values[i] = 0;
        }
        for (let t = 0; t < trees; t++) {
          let node = 0;
          for (let k = 0; k < depth; k++) {
            const at = (level * trees + t) * splits + node;
            node = f32(values[this.features[2 * at]] - values[this.features[2 * at + 1]]) > this.thresholds[at] ? 2 * node + 1 : 2 * node + 2;
          }
          const leaf = ((level * trees + t) * count + node - splits) * parts * 2;
          for (let j = 0; j < parts * 2; j++) shape[j] = f32(shape[j] + this.leaves[leaf + j]);
        }
      }
      return Array.from({ length: parts }, (_, i) => [Math.floor(shape[2 * i] * sizeX + left + 0.5), Math.floor(shape[2 * i + 1] * sizeY + top + 0.5)]);
    }

    // The points of the face whose facezoo landmarks are `landmarks`: from the box they imply (dlib_box).
    fromLandmarks(image, landmarks) {
      const m = estimateSimilarity(LANDMARKS_IN_DLIB_BOX, landmarks);
      const cx = m[0][0] * 0.5 + m[0][1] * 0.5 + m[0][2], cy = m[1][0] * 0.5 + m[1][1] * 0.5 + m[1][2];
      const side = Math.sqrt(Math.abs(m[0][0] * m[1][1] - m[0][1] * m[1][0]));
      const edge = (v) => Math.floor(v + 0.5);
      return this.predict(image, [edge(cx - side / 2), edge(cy - side / 2), edge(cx + side / 2) - 1, edge(cy + side / 2) - 1]);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Detection: YuNet with O-Net landmarks (facezoo/detection/yunet.py, mtcnn.py)
  // ---------------------------------------------------------------------------------------------
  const STRIDES = [8, 16, 32];

  function iou(a, b) {
    const iw = Math.max(Math.min(a[2], b[2]) - Math.max(a[0], b[0]), 0);
    const ih = Math.max(Math.min(a[3], b[3]) - Math.max(a[1], b[1]), 0);
    const inter = iw * ih;
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
  }

  function nms(rows, threshold) {
    const order = rows.map((_, i) => i).sort((i, j) => rows[j][4] - rows[i][4] || i - j);
    const keep = [];
    let rest = order;
    while (rest.length) {
      const i = rest[0];
      keep.push(i);
      rest = rest.slice(1).filter((j) => !(iou(rows[i], rows[j]) > threshold));
    }
    return keep.map((i) => rows[i]);
  }

  function poolMatrix(length, out) {
    const m = new Float32Array(out * length);
    for (let o = 0; o < out; o++) {
      const start = Math.floor((o * length) / out), stop = Math.ceil(((o + 1) * length) / out);
      for (let i = start; i < stop; i++) m[o * length + i] = 1 / (stop - start);
    }
    return m;
  }

  class Detector {
    constructor(ort, sessions, settings) {
      this.ort = ort;
      this.yunet = sessions.yunet;
      this.onet = sessions.onet;
      this.settings = settings;
    }

    async detect(image, maxSide) {
      if (Math.min(image.width, image.height) < 8) return [];
      const s = this.settings;
      const longer = Math.max(image.width, image.height);
      const target = Math.min(Math.max(longer, s.min_side), maxSide || s.max_side);
      let resized = image, sx = 1, sy = 1;
      if (target !== longer) {
        const ratio = target / longer;
        const w = Math.max(1, roundHalfEven(image.width * ratio)), h = Math.max(1, roundHalfEven(image.height * ratio));
        resized = resize(image, w, h);
        sx = w / image.width;
        sy = h / image.height;
      }
      const { width, height } = resized;
      const pw = Math.ceil(width / 32) * 32, ph = Math.ceil(height / 32) * 32;
      const input = new Float32Array(3 * ph * pw);
      const plane = ph * pw;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const p = (y * width + x) * 3, q = y * pw + x;
          input[q] = resized.data[p + 2]; // BGR
          input[plane + q] = resized.data[p + 1];
          input[2 * plane + q] = resized.data[p];
        }
      }
      const feeds = { [this.yunet.inputNames[0]]: new this.ort.Tensor("float32", input, [1, 3, ph, pw]) };
      const outputs = await this.yunet.run(feeds);
      const named = this.yunet.outputNames.map((name) => outputs[name].data);
      let rows = [];
      STRIDES.forEach((stride, level) => {
        const cls = named[level], obj = named[3 + level], bbox = named[6 + level], kps = named[9 + level];
        const columns = pw / stride;
        for (let i = 0; i < cls.length; i++) {
          const score = Math.fround(Math.sqrt(Math.fround(Math.min(Math.max(cls[i], 0), 1) * Math.min(Math.max(obj[i], 0), 1))));
          if (score < s.score_threshold) continue;
          const col = i % columns, row = Math.floor(i / columns);
          const cx = (col + bbox[i * 4]) * stride, cy = (row + bbox[i * 4 + 1]) * stride;
          const w = Math.exp(bbox[i * 4 + 2]) * stride, h = Math.exp(bbox[i * 4 + 3]) * stride;
          const r = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score];
          for (let k = 0; k < 5; k++) r.push((col + kps[i * 10 + 2 * k]) * stride);
          for (let k = 0; k < 5; k++) r.push((row + kps[i * 10 + 2 * k + 1]) * stride);
          rows.push(r.map(Math.fround));
        }
      });
      rows = nms(rows, s.nms_threshold).map((r) => {
        const f = r.slice();
        f[0] = Math.min(Math.max(f[0], 0), width) / sx;
        f[2] = Math.min(Math.max(f[2], 0), width) / sx;
        f[1] = Math.min(Math.max(f[1], 0), height) / sy;
        f[3] = Math.min(Math.max(f[3], 0), height) / sy;
        for (let k = 5; k < 10; k++) f[k] /= sx;
        for (let k = 10; k < 15; k++) f[k] /= sy;
        return f;
      });
      if (this.onet && rows.length) await this.refine(image, rows);
      return rows.map((f) => ({ box: f.slice(0, 4), score: f[4], landmarks: [0, 1, 2, 3, 4].map((k) => [f[5 + k], f[10 + k]]) }));
    }

    // O-Net's points replace YuNet's where it scores the face and agrees on its orientation and size.
    async refine(image, rows) {
      const size = 48;
      const black = (0.0 - 127.5) * 0.0078125;
      const crops = [], kept = [], squares = [];
      rows.forEach((f, k) => {
        const w = f[2] - f[0], h = f[3] - f[1], side = Math.max(w, h);
        const left = f[0] + 0.5 * w - 0.5 * side, top = f[1] + 0.5 * h - 0.5 * side;
        const square = [left, top, left + side, top + side];
        squares.push(square);
        const b = square.map(Math.trunc);
        const x0 = Math.max(b[0] - 1, 0), y0 = Math.max(b[1] - 1, 0);
        const rw = Math.max(x0, Math.min(b[2], image.width)) - x0, rh = Math.max(y0, Math.min(b[3], image.height)) - y0;
        const c = [square[0] - x0, square[1] - y0, square[2] - x0, square[3] - y0].map(Math.trunc);
        const cx1 = Math.max(c[0], 1), cy1 = Math.max(c[1], 1), cx2 = Math.min(c[2], rw), cy2 = Math.min(c[3], rh);
        if (!(cx2 >= cx1 && cy2 >= cy1 && c[2] >= c[0] && c[3] >= c[1]) || rw <= 0 || rh <= 0) return;
        const bh = c[3] - c[1] + 1, bw = c[2] - c[0] + 1;
        const canvas = new Float32Array(3 * bh * bw).fill(Math.fround(black));
        for (let y = cy1; y <= cy2; y++) {
          for (let x = cx1; x <= cx2; x++) {
            const p = ((y0 + y - 1) * image.width + (x0 + x - 1)) * 3;
            const q = (y - c[1]) * bw + (x - c[0]);
            for (let ch = 0; ch < 3; ch++) canvas[ch * bh * bw + q] = Math.fround((image.data[p + ch] - 127.5) * 0.0078125);
          }
        }
        const rowsPool = poolMatrix(bh, size), colsPool = poolMatrix(bw, size);
        const out = new Float32Array(3 * size * size);
        const tmp = new Float64Array(size * bw);
        for (let ch = 0; ch < 3; ch++) {
          tmp.fill(0);
          for (let o = 0; o < size; o++) {
            for (let y = 0; y < bh; y++) {
              const wgt = rowsPool[o * bh + y];
              if (!wgt) continue;
              for (let x = 0; x < bw; x++) tmp[o * bw + x] += wgt * canvas[ch * bh * bw + y * bw + x];
            }
          }
          for (let o = 0; o < size; o++) {
            for (let p = 0; p < size; p++) {
              let sum = 0;
              for (let x = 0; x < bw; x++) sum += tmp[o * bw + x] * colsPool[p * bw + x];
              out[ch * size * size + o * size + p] = sum;
            }
          }
        }
        crops.push(out);
        kept.push(k);
      });
      if (!kept.length) return;
      const batch = new Float32Array(kept.length * 3 * size * size);
      crops.forEach((c, i) => batch.set(c, i * c.length));
      const outputs = await this.onet.run({ [this.onet.inputNames[0]]: new this.ort.Tensor("float32", batch, [kept.length, 3, size, size]) });
      const [probName, , marksName] = this.onet.outputNames;
      const prob = outputs[probName].data, marks = outputs[marksName].data;
      kept.forEach((k, i) => {
        const sq = squares[k], f = rows[k];
        const sideX = sq[2] - sq[0] + 1, sideY = sq[3] - sq[1] + 1;
        const px = [0, 1, 2, 3, 4].map((j) => sq[0] - 1 + sideX * marks[i * 10 + j]);
        const py = [0, 1, 2, 3, 4].map((j) => sq[1] - 1 + sideY * marks[i * 10 + 5 + j]);
        const mine = [f[6] - f[5], f[11] - f[10]], theirs = [px[1] - px[0], py[1] - py[0]];
        let turn = ((Math.atan2(theirs[1], theirs[0]) - Math.atan2(mine[1], mine[0])) * 180) / Math.PI;
        turn = Math.abs((((turn + 180) % 360) + 360) % 360 - 180);
        const ratio = Math.hypot(theirs[0], theirs[1]) / Math.max(Math.hypot(mine[0], mine[1]), 1e-6);
        if (prob[i] >= this.settings.refine_score && turn <= 15 && ratio >= 0.8 && ratio <= 1.25) {
          for (let j = 0; j < 5; j++) {
            f[5 + j] = px[j];
            f[10 + j] = py[j];
          }
        }
      });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Tasks: decoding raw outputs as each built-in plugin does (its postprocess), and captions
  // ---------------------------------------------------------------------------------------------
  const round = (x, digits) => Number(x.toFixed(digits));

  function softmax(row) {
    const top = Math.max(...row);
    const e = Array.from(row, (v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  }

  const DECODERS = {
    beauty(row, model) {
      if ((model.head.mode || "distribution") === "regression") {
        return { score: round(Math.fround(1 + 4 / (1 + Math.exp(-row[0]))), 4), distribution: null };
      }
      const p = softmax(row);
      const score = p.reduce((acc, v, i) => acc + v * (1 + (4 * i) / (p.length - 1)), 0);
      return { score: round(Math.fround(score), 4), distribution: p.map((v) => round(Math.fround(v), 6)) };
    },
    "age-gender"(row, model) {
      const p = softmax(Array.from(row).slice(0, 101));
      const age = Math.fround(p.reduce((acc, v, i) => acc + v * i, 0));
      const female = Math.fround(1 / (1 + Math.exp(-row[101])));
      const isFemale = female >= 0.5;
      return { age: round(age, 2), gender: model.labels[isFemale ? 1 : 0], gender_probability: round(isFemale ? female : 1 - female, 6) };
    },
    expression(row, model) {
      const p = softmax(row).map(Math.fround);
      const best = p.indexOf(Math.max(...p));
      return { label: model.labels[best], probabilities: Object.fromEntries(model.labels.map((l, i) => [l, round(p[i], 6)])) };
    },
    keypoints(row, model, crop) {
      const [height, width] = model.preprocess.input_size;
      const m = crop.cropToImage;
      const points = [];
      for (let i = 0; i < row.length; i += 2) {
        const x = Math.fround((row[i] + 1) * Math.fround(width / 2) - 0.5), y = Math.fround((row[i + 1] + 1) * Math.fround(height / 2) - 0.5);
        points.push([round(m[0][0] * x + m[0][1] * y + m[0][2], 3), round(m[1][0] * x + m[1][1] * y + m[1][2], 3)]);
      }
      return { points };
    },
    identity(row) {
      let norm = 0;
      for (const v of row) norm += v * v;
      norm = Math.max(Math.sqrt(norm), 1e-12);
      return { embedding: Array.from(row, (v) => round(v / norm, 6)), matches: null };
    },
  };

  const CAPTIONS = {
    beauty: (r) => `beauty ${r.score.toFixed(2)} on 1-5`,
    "age-gender": (r) => `${r.age.toFixed(0)}y ${r.gender}`,
    expression: (r) => r.label,
    keypoints: (r) => `${r.points.length} points`,
    identity: (r) => `embedding[${r.embedding.length}]`,
  };

  // ---------------------------------------------------------------------------------------------
  // The API
  // ---------------------------------------------------------------------------------------------
  const here = typeof document !== "undefined" && document.currentScript ? new URL(".", document.currentScript.src).href : "";

  async function decodeInput(input) {
    if (input && input.data && input.width && input.height && input.data.length === input.width * input.height * 3) return input;
    let source = input;
    if (typeof input === "string" || input instanceof URL) {
      const response = await fetch(input);
      if (!response.ok) throw new Error(`${input}: ${response.status} ${response.statusText}`);
      source = await response.blob();
    }
    if (typeof Blob !== "undefined" && source instanceof Blob) {
      source = await createImageBitmap(source, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
    }
    const width = source.videoWidth || source.naturalWidth || source.width;
    const height = source.videoHeight || source.naturalHeight || source.height;
    if (!width || !height) throw new Error("facezoo.analyze() takes an image, video, canvas, ImageBitmap, Blob or URL with pixels in it");
    if (typeof ImageData !== "undefined" && source instanceof ImageData) return fromRGBA(source.data, width, height);
    const canvas = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(width, height) : Object.assign(document.createElement("canvas"), { width, height });
    const context = canvas.getContext("2d", { willReadFrequently: true, colorSpace: "srgb" });
    context.drawImage(source, 0, 0, width, height);
    return fromRGBA(context.getImageData(0, 0, width, height).data, width, height);
  }

  class Analyzer {
    constructor(ort, manifest, detector, models, sessions) {
      this.ort = ort;
      this.manifest = manifest;
      this.detector = detector;
      this.models = models;
      this.sessions = sessions;
    }

    get tasks() {
      return this.models.map((m) => m.task);
    }

    // Faces found in an image: [{box, score, landmarks}], best first, in its pixels. maxSide:
    // detect on a copy at most this long (faster, misses small faces; boxes are mapped back).
    async detect(input, options = {}) {
      const image = await decodeInput(input);
      return this._detect(image, options.maxSide);
    }

    async _detect(image, maxSide) {
      const pre = this.models[0].preprocess;
      const keep = (faces) => faces.filter((f) => f.score >= pre.min_face_score);
      let faces = keep(await this.detector.detect(image, maxSide));
      if (!faces.length && pre.detect_padding > 0) {
        const border = roundHalfEven(pre.detect_padding * Math.max(image.width, image.height));
        faces = keep(await this.detector.detect(expand(image, border), maxSide)).map((f) => ({
          box: f.box.map((v) => v - border),
          score: f.score,
          landmarks: f.landmarks.map(([x, y]) => [x - border, y - border]),
        }));
      }
      return faces;
    }

    // Every task's result for each face, as /v1/analyze answers: {faces, captions, image}.
    async analyze(input, options = {}) {
      const image = await decodeInput(input);
      const faces = options.faces || (await this._detect(image, options.maxSide));
      return { ...(await this.describe(image, faces)), image: { width: image.width, height: image.height } };
    }

    // The tasks' results for faces already found (webcam mode: tracked faces).
    async describe(image, faces) {
      const records = faces.map((face) => ({ face: { box: face.box, score: face.score, landmarks: face.landmarks } }));
      const captions = faces.map(() => ({}));
      if (!faces.length) return { faces: records, captions };
      const cuts = new Map();
      for (const model of this.models) {
        const pre = model.preprocess;
        const [height, width] = pre.input_size;
        const framing = JSON.stringify([pre.crop, pre.template, pre.landmarks, pre.scale, pre.input_size, pre.grayscale]);
        if (!cuts.has(framing)) {
          cuts.set(framing, faces.map((face) => {
            const points = pre.landmarks === "dlib-5" ? this.shapePredictor.fromLandmarks(image, face.landmarks) : face.landmarks;
            const cut = alignFace(image, points, height, width, pre.scale, pre.template);
            return pre.grayscale ? { ...cut, image: grayscale(cut.image) } : cut;
          }));
        }
        const crops = cuts.get(framing);
        const plane = height * width;
        const batch = new Float32Array(crops.length * 3 * plane);
        const mean = pre.mean.map((m) => Math.fround(Math.fround(m) * 255));
        const inv = pre.std.map((s) => Math.fround(1 / Math.fround(Math.fround(s) * 255)));
        crops.forEach((c, n) => {
          const d = c.image.data;
          for (let i = 0; i < plane; i++) {
            for (let ch = 0; ch < 3; ch++) batch[(n * 3 + ch) * plane + i] = Math.fround(Math.fround(d[i * 3 + ch] - mean[ch]) * inv[ch]);
          }
        });
        const session = this.sessions[model.task];
        const outputs = await session.run({ [session.inputNames[0]]: new this.ort.Tensor("float32", batch, [crops.length, 3, height, width]) });
        const raw = outputs[session.outputNames[0]];
        const length = raw.dims[1];
        crops.forEach((c, n) => {
          const row = raw.data.subarray(n * length, (n + 1) * length);
          const result = { model: model.id, trained: model.trained, ...DECODERS[model.task](row, model, c) };
          records[n][model.task] = result;
          captions[n][model.task] = CAPTIONS[model.task](result) + (model.trained ? "" : " (untrained)");
        });
      }
      return { faces: records, captions };
    }

    async close() {
      for (const session of [this.detector.yunet, this.detector.onet, ...Object.values(this.sessions)]) if (session) await session.release();
    }
  }

  // Load the manifest, onnxruntime-web and the chosen models.
  //   base: where manifest.json, the models and vendor/ lie (default: beside this script)
  //   tasks: which of the manifest's tasks to run (default: all of them)
  //   token: the facezoo serve token, when the server has one (sent with the manifest and model requests)
  //   threads: WASM threads (default: 2 when the page is cross-origin isolated, else 1)
  //   executionProviders: e.g. ["webgpu", "wasm"] (default ["wasm"])
  async function create(options = {}) {
    const base = new URL(options.base || here || "./", typeof location !== "undefined" ? location.href : undefined).href;
    const headers = options.token ? { Authorization: "Bearer " + options.token } : {};
    const manifestResponse = await fetch(new URL("manifest.json", base), { headers });
    if (manifestResponse.status === 401) throw Object.assign(new Error("this server needs its token: facezoo.create({token})"), { status: 401 });
    if (!manifestResponse.ok) throw new Error(`no facezoo manifest at ${new URL("manifest.json", base)} (${manifestResponse.status}): serve a folder written by facezoo export-web, or facezoo serve's /web/`);
    const manifest = await manifestResponse.json();
    if (manifest.format !== 1) throw new Error(`this facezoo.js reads manifest format 1, not ${manifest.format}: export the models again with this facezoo`);
    const available = manifest.models.map((m) => m.task);
    const tasks = options.tasks || available;
    const missing = tasks.filter((t) => !available.includes(t));
    if (missing.length) {
      const why = missing.map((t) => (manifest.unsupported && manifest.unsupported[t] ? `${t} (${manifest.unsupported[t]})` : t)).join(", ");
      throw new Error(`not available in the browser: ${why}; available: ${available.join(", ") || "none"}`);
    }
    const models = tasks.map((t) => manifest.models.find((m) => m.task === t));
    // One detection for all tasks, as facezoo.analyze: they must find faces alike.
    const detection = (m) => JSON.stringify([m.preprocess.detector, m.preprocess.min_face_score, m.preprocess.detect_padding]);
    if (new Set(models.map(detection)).size > 1) {
      throw new Error(`these tasks find faces differently (${models.map((m) => `${m.task}: ${detection(m)}`).join("; ")}); create one analyzer per detection`);
    }
    const ort = options.ort || (await import(new URL(manifest.runtime.module, base).href));
    ort.env.wasm.wasmPaths = new URL(manifest.runtime.wasm_dir, base).href;
    const isolated = typeof crossOriginIsolated !== "undefined" && crossOriginIsolated;
    ort.env.wasm.numThreads = options.threads || (isolated ? Math.min(2, navigator.hardwareConcurrency || 1) : 1);
    const sessionOptions = { executionProviders: options.executionProviders || ["wasm"], graphOptimizationLevel: "all" };
    const fetchBytes = async (path) => {
      const response = await fetch(new URL(path, base), { headers });
      if (!response.ok) throw new Error(`${new URL(path, base)}: ${response.status} ${response.statusText}`);
      return response.arrayBuffer();
    };
    const open = async (path) => ort.InferenceSession.create(new Uint8Array(await fetchBytes(path)), sessionOptions);
    const d = manifest.detector;
    const needsShape = models.some((m) => m.preprocess.landmarks === "dlib-5");
    if (needsShape && !d.shape_predictor) throw new Error("a model aligns on dlib's 5 points, but the manifest names no shape predictor: export the models again with this facezoo");
    const [yunet, onet, shape, ...taskSessions] = await Promise.all([
      open(d.model), d.landmarks ? open(d.landmarks) : null, needsShape ? fetchBytes(d.shape_predictor) : null, ...models.map((m) => open(m.model)),
    ]);
    const sessions = Object.fromEntries(models.map((m, i) => [m.task, taskSessions[i]]));
    const analyzer = new Analyzer(ort, manifest, new Detector(ort, { yunet, onet }, d.settings), models, sessions);
    analyzer.shapePredictor = shape ? new ShapePredictor(readSafetensors(shape)) : null;
    return analyzer;
  }

  // Frame-to-frame face tracks: each face keeps its id while a face in the next frame overlaps it
  // (IoU >= minIoU, greedy best first); a track unseen for maxMissed frames ends.
  class Tracker {
    constructor({ minIoU = 0.3, maxMissed = 5 } = {}) {
      this.minIoU = minIoU;
      this.maxMissed = maxMissed;
      this.tracks = [];
      this.nextId = 1;
    }

    update(faces) {
      const pairs = [];
      this.tracks.forEach((t, ti) => faces.forEach((f, fi) => {
        const overlap = iou(t.box, f.box);
        if (overlap >= this.minIoU) pairs.push([overlap, ti, fi]);
      }));
      pairs.sort((a, b) => b[0] - a[0]);
      const usedTracks = new Set(), ids = new Array(faces.length).fill(0);
      for (const [, ti, fi] of pairs) {
        if (usedTracks.has(ti) || ids[fi]) continue;
        usedTracks.add(ti);
        ids[fi] = this.tracks[ti].id;
        Object.assign(this.tracks[ti], { box: faces[fi].box, missed: 0 });
      }
      this.tracks.forEach((t, ti) => { if (!usedTracks.has(ti)) t.missed += 1; });
      this.tracks = this.tracks.filter((t) => t.missed <= this.maxMissed);
      faces.forEach((f, fi) => {
        if (!ids[fi]) {
          ids[fi] = this.nextId++;
          this.tracks.push({ id: ids[fi], box: f.box, missed: 0 });
        }
      });
      return ids;
    }
  }

  // The RGB pixels of an image, video frame, canvas, Blob or URL, decoded once: every Analyzer
  // method takes them in place of the input (a video frame analysed by several calls).
  const pixels = decodeInput;

  root.facezoo = { create, pixels, Tracker, version: 1, _internals: { resize, reduce, grayscale, crop, alignFace, ShapePredictor, readSafetensors } }; // _internals: for tests/test_web.py's comparison with Pillow
})(typeof globalThis !== "undefined" ? globalThis : window);
