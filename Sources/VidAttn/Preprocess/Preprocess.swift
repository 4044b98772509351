// Turning decoded RGB frames into a model's pixel_values, per the checkpoint's
// preprocessor_config.json: shortest-edge (or fixed-size) resize, centre crop,
// rescale (with ViViT's offset), normalise; output [T, C, H, W] float32.
//
// Resizing is bilinear with PyTorch's align_corners=False arithmetic and no
// antialiasing (torchvision's VideoClassification preset uses antialias=False);
// HF's slow processors resize with PIL, which antialiases when shrinking, so
// values can differ slightly from theirs on large downscales.
import Kernels

/// Preprocessing read from a checkpoint's preprocessor_config.json (defaults: ImageNet mean/std at 224).
public struct PreprocessConfig: Sendable {
    /// Resize so the shorter side has this length (nil: no shortest-edge resize).
    public var shortestEdge: Int? = 224
    /// Resize to exactly (h, w) instead (nil: not used).
    public var resizeTo: (h: Int, w: Int)? = nil
    /// Centre crop (h, w) after resizing (nil: no crop).
    public var crop: (h: Int, w: Int)? = (224, 224)
    /// Factor on the 0–255 values.
    public var rescale: Float = 1.0 / 255
    /// Subtract 1 after rescaling (ViViT: x·rescale − 1).
    public var offset: Bool = false  // ViViT: x·rescale − 1
    /// Per-channel mean subtracted when normalising.
    public var mean: [Float] = [0.485, 0.456, 0.406]
    /// Per-channel standard deviation divided by when normalising.
    public var std: [Float] = [0.229, 0.224, 0.225]
    /// Whether to normalise with mean and std.
    public var normalize = true
    /// Frames the model wants (from config.json: num_frames / frames), if known.
    public var numFrames: Int? = nil
    /// Resize like Pillow's BILINEAR on 8-bit images (HF's slow image processors) instead
    /// of a plain bilinear without antialiasing (torchvision's video preset).
    public var pillowResize = false
    /// HF centre crop offsets are floor((h − crop) / 2); torchvision rounds.
    var floorCrop = false
    /// Fixed-point weights of the antialiased resize: torch's int16 (processors on the
    /// torchvision backend, e.g. VideoMAEImageProcessor) or Pillow's (VivitImageProcessor).
    var torchResizeWeights = true

    /// The defaults above.
    public init() {}

    /// Reads preprocessor_config.json (HF image/video processors, or the converters'
    /// torchvision / motionformer presets); defaults per model type when absent.
    public init(directory dir: String, modelConfig: JSON) throws {
        self.init()
        let type = modelConfig["model_type"]?.string ?? ""
        switch type {
        case "vivit":
            shortestEdge = 256; rescale = 1 / 127.5; offset = true; mean = [0.5, 0.5, 0.5]; std = [0.5, 0.5, 0.5]
        case "timesformer":
            mean = [0.45, 0.45, 0.45]; std = [0.225, 0.225, 0.225]
        case "motionformer":
            mean = [0.5, 0.5, 0.5]; std = [0.5, 0.5, 0.5]
        default: break
        }
        numFrames = modelConfig["num_frames"]?.int ?? modelConfig["frames"]?.int
        if type == "motionformer", let t = modelConfig["temporal_resolution"]?.int,
            let pt = modelConfig["patch_size_temp"]?.int
        {
            numFrames = t * pt
        }
        if let img = modelConfig["image_size"]?.int ?? modelConfig["img_size"]?.int {
            crop = (img, img)
        } else if let h = modelConfig["height"]?.int, let w = modelConfig["width"]?.int {
            crop = (h, w)  // FastTimeSformer's config.json: the frame size as height × width
        }
        let path = dir + "/preprocessor_config.json"
        guard fileExists(path) else {
            // No processor config: resize the short side straight to the crop.
            if let c = crop { shortestEdge = min(c.h, c.w) }
            return
        }
        let j = try JSON.parse(try MappedFile(path: path).text())
        let file = path
        func num(_ v: JSON?) throws -> Float? {
            guard let v else { return nil }
            guard let d = v.double else { throw VidAttnError(.badFormat, "\(file): expected a number, got \(v)") }
            return Float(d)
        }
        func floats(_ key: String) throws -> [Float]? {
            guard let v = j[key] else { return nil }
            if let d = v.double { return [Float(d), Float(d), Float(d)] }
            guard let a = v.array, a.count == 3, a.allSatisfy({ $0.double != nil }) else {
                throw VidAttnError(.badFormat, "\(file): '\(key)' must be a number or 3 numbers")
            }
            return a.map { Float($0.double!) }
        }
        if j["processor"]?.string == "torchvision_video_classification" {
            rescale = 1.0 / 255; offset = false
            shortestEdge = j["resize_size"]?.array?.first?.int ?? 256
            if let c = j["crop_size"]?.array, c.count == 2, let h = c[0].int, let w = c[1].int { crop = (h, w) }
        } else if j["processor"]?.string == "motionformer" || j["processor"]?.string == "mmaction" {
            // Short side resized, centre crop, x/255 then mean/std (mmaction's 0-255 constants / 255).
            rescale = 1.0 / 255; offset = false
            shortestEdge = j["resize_short_side"]?.int ?? shortestEdge
            if let c = j["crop_size"]?.int { crop = (c, c) }
        } else {
            // HF image processors: PIL resize (resample 2 = BILINEAR, 3 = BICUBIC), floor crop.
            pillowResize = true
            floorCrop = true
            torchResizeWeights = !(j["image_processor_type"]?.string ?? "").hasPrefix("Vivit")
            if let r = j["resample"]?.int, r != 2 {
                throw VidAttnError(.unsupported, "\(file): resample \(r) is not supported (only 2, bilinear)")
            }
            if j["do_resize"]?.bool == false {
                shortestEdge = nil; resizeTo = nil
            } else if let size = j["size"] {
                if let se = size["shortest_edge"]?.int {
                    shortestEdge = se; resizeTo = nil
                } else if let h = size["height"]?.int, let w = size["width"]?.int {
                    resizeTo = (h, w); shortestEdge = nil
                } else if let s = size.int {
                    shortestEdge = s
                }
            }
            if j["do_center_crop"]?.bool == false {
                crop = nil
            } else if let c = j["crop_size"] {
                if let h = c["height"]?.int, let w = c["width"]?.int {
                    crop = (h, w)
                } else if let s = c.int {
                    crop = (s, s)
                }
            }
            if j["do_rescale"]?.bool == false {
                rescale = 1
            } else if let r = try num(j["rescale_factor"]) {
                rescale = r
            }
            if let o = j["offset"]?.bool { offset = o }
            if j["do_normalize"]?.bool == false { normalize = false }
        }
        if let m = try floats("image_mean") ?? floats("mean") { mean = m }
        if let s = try floats("image_std") ?? floats("std") { std = s }
        guard std.allSatisfy({ $0 != 0 }) else { throw VidAttnError(.badFormat, "\(file): std contains 0") }
    }

    /// Output frame size for an input of h×w.
    public func outputSize(h: Int, w: Int) -> (h: Int, w: Int) {
        let r = resized(h: h, w: w)
        return crop ?? r
    }

    func resized(h: Int, w: Int) -> (h: Int, w: Int) {
        if let r = resizeTo { return r }
        guard let se = shortestEdge else { return (h, w) }
        // HF get_resize_output_image_size: the short side becomes se, the long side int(se·long/short).
        if h <= w { return (se, Int(Double(se) * Double(w) / Double(h))) }
        return (Int(Double(se) * Double(h) / Double(w)), se)
    }

    /// rgb: T frames of h×w×3 bytes → out [T, 3, H', W'] (H', W' from outputSize). Throws only
    /// when the resize buffers cannot be had.
    public func apply(rgb: UnsafePointer<UInt8>, frames T: Int, h: Int, w: Int, into out: UnsafeMutablePointer<Float>)
        throws
    {
        let (rh, rw) = resized(h: h, w: w)
        let (oh, ow) = outputSize(h: h, w: w)
        if pillowResize {
            let ct = (rh - oh) / 2, cl = (rw - ow) / 2
            let scale = rescale, mean = self.mean, std = self.std, offset = self.offset, normalize = self.normalize
            // transformers 5.x resizes uint8 frames with torchvision's antialiased bilinear:
            // Pillow's filter with int16 fixed-point weights.
            let plan = try PILResize.Plan(h: h, w: w, toH: rh, toW: rw, torchPrecision: torchResizeWeights)
            // Per worker: the resized frame and the intermediate of the two passes.
            let workers = max(1, min(Threads.count, T)), per = rh * rw * 3 + plan.scratchBytes
            guard let bytes = checkedProduct(workers, per), let buf = allocCounted(UInt8.self, bytes) else {
                throw VidAttnError(
                    .outOfMemory, "preprocessing: cannot allocate \(workers)×\(per) bytes of resize buffers")
            }
            defer { freeCounted(buf) }
            parallelFor(T, threads: workers) { t, wk in
                let img = buf + wk * per
                PILResize.resize(rgb + t * h * w * 3, plan, scratch: img + rh * rw * 3, into: img)
                for y in 0..<oh {
                    for x in 0..<ow {
                        for c in 0..<3 {
                            let yy = y + ct, xx = x + cl
                            var v: Float = 0
                            if yy >= 0 && yy < rh && xx >= 0 && xx < rw { v = Float(img[(yy * rw + xx) * 3 + c]) }
                            v = v * scale - (offset ? 1 : 0)
                            if normalize { v = (v - mean[c]) / std[c] }
                            out[((t * 3 + c) * oh + y) * ow + x] = v
                        }
                    }
                }
            }
            return
        }
        // Centre crop offsets as torchvision computes them: int(round((rh - oh) / 2)).
        let ct = Int((Double(rh - oh) / 2).rounded()), cl = Int((Double(rw - ow) / 2).rounded())
        let sy = Double(h) / Double(rh), sx = Double(w) / Double(rw)
        let scale = rescale
        let mean = self.mean, std = self.std, offset = self.offset, normalize = self.normalize
        parallelFor(T) { t, _ in
            let src = rgb + t * h * w * 3
            for y in 0..<oh {
                let fy = max((Double(y + ct) + 0.5) * sy - 0.5, 0)
                let y0 = min(Int(fy), h - 1), y1 = min(y0 + 1, h - 1), ly = Float(fy - Double(y0))
                for x in 0..<ow {
                    let fx = max((Double(x + cl) + 0.5) * sx - 0.5, 0)
                    let x0 = min(Int(fx), w - 1), x1 = min(x0 + 1, w - 1), lx = Float(fx - Double(x0))
                    for c in 0..<3 {
                        let v00 = Float(src[(y0 * w + x0) * 3 + c]), v01 = Float(src[(y0 * w + x1) * 3 + c])
                        let v10 = Float(src[(y1 * w + x0) * 3 + c]), v11 = Float(src[(y1 * w + x1) * 3 + c])
                        var v = (1 - ly) * ((1 - lx) * v00 + lx * v01) + ly * ((1 - lx) * v10 + lx * v11)
                        v = v * scale - (offset ? 1 : 0)
                        if normalize { v = (v - mean[c]) / std[c] }
                        out[((t * 3 + c) * oh + y) * ow + x] = v
                    }
                }
            }
        }
    }
}

/// Indices of `count` frames sampled uniformly from `available` (centre of each segment).
public func sampleFrameIndices(available: Int, count: Int) -> [Int] {
    guard available > 0, count > 0 else { return [] }
    return (0..<count).map { i in min(available - 1, Int((Double(i) + 0.5) * Double(available) / Double(count))) }
}
