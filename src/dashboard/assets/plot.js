// pmr dashboard: line charts and sparklines on <canvas>. Hand-written
// because the page draws one series per chart, at most 1440 points: a
// chart library (uPlot is ~45 KB) would be most of the page's weight
// for what ~150 lines do.
'use strict'

const Plot = (() => {
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim()

  function fit (canvas) {
    const ratio = window.devicePixelRatio || 1
    const w = canvas.clientWidth
    const h = canvas.clientHeight
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio)
      canvas.height = Math.round(h * ratio)
    }
    const ctx = canvas.getContext('2d')
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0)
    ctx.clearRect(0, 0, w, h)
    return { ctx, w, h }
  }

  // A round upper bound for the axis: 1, 2 or 5 times a power of ten.
  function niceMax (v) {
    if (!(v > 0)) return 1
    const p = Math.pow(10, Math.floor(Math.log10(v)))
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p
    return 10 * p
  }

  function clock (t, withSeconds) {
    const d = new Date(t * 1000)
    const two = (n) => String(n).padStart(2, '0')
    return two(d.getHours()) + ':' + two(d.getMinutes()) + (withSeconds ? ':' + two(d.getSeconds()) : '')
  }

  // xs: seconds; ys: numbers or null (a gap); step: seconds between samples.
  function line (canvas, xs, ys, { step = 1, format = String, color = css('--accent') } = {}) {
    const { ctx, w, h } = fit(canvas)
    const pad = { l: 60, r: 8, t: 8, b: 18 }
    const pw = w - pad.l - pad.r
    const ph = h - pad.t - pad.b
    let max = 0
    let points = 0
    for (const y of ys) if (y != null) { points++; if (y > max) max = y }
    canvas.dataset.points = String(points)
    const top = niceMax(max)
    const now = xs.length ? xs[xs.length - 1] : Date.now() / 1000
    // The axis grows with the data, up to the ring's length: a chart of a
    // minute's samples is not squeezed into the right edge of 15 minutes.
    const full = step === 1 ? 15 * 60 : 24 * 3600
    const least = step === 1 ? 60 : 3600
    const span = Math.min(full, Math.max(least, xs.length ? now - xs[0] : 0))
    const x0 = now - span
    const X = (t) => pad.l + ((t - x0) / span) * pw
    const Y = (v) => pad.t + ph - (v / top) * ph
    ctx.font = '11px system-ui, sans-serif'
    ctx.fillStyle = css('--muted')
    ctx.strokeStyle = css('--grid')
    ctx.lineWidth = 1
    ctx.textAlign = 'right'
    ctx.textBaseline = 'middle'
    for (let i = 0; i <= 4; i++) {
      const v = (top / 4) * i
      const y = Math.round(Y(v)) + 0.5
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke()
      ctx.fillText(format(v, top), pad.l - 6, y)
    }
    ctx.textAlign = 'center'
    ctx.textBaseline = 'top'
    for (let i = 0; i <= 3; i++) {
      const t = x0 + (span / 3) * i
      ctx.fillText(clock(t, span < 3600), Math.min(Math.max(X(t), pad.l + 20), w - pad.r - 20), h - pad.b + 4)
    }
    if (!points) {
      ctx.fillText('no samples yet', pad.l + pw / 2, pad.t + ph / 2)
      return
    }
    ctx.strokeStyle = color
    ctx.lineWidth = 1.5
    ctx.lineJoin = 'round'
    ctx.beginPath()
    let drawing = false
    let prev = null
    for (let i = 0; i < xs.length; i++) {
      const y = ys[i]
      // A sample missing, or more than two steps late: the process was not running.
      if (y == null || (prev != null && xs[i] - prev > step * 2.5)) { drawing = false }
      if (y != null) {
        if (drawing) ctx.lineTo(X(xs[i]), Y(y))
        else ctx.moveTo(X(xs[i]), Y(y))
        drawing = true
      }
      prev = xs[i]
    }
    ctx.stroke()
  }

  function spark (canvas, ys, color = css('--accent')) {
    const { ctx, w, h } = fit(canvas)
    const vals = ys.filter((y) => y != null)
    canvas.dataset.points = String(vals.length)
    if (vals.length < 2) return
    // Scaled between the lowest and highest value: a flat memory line still shows its drift.
    const hi = Math.max(...vals)
    const lo = Math.min(...vals)
    const floor = hi - lo < hi * 0.02 ? hi * 0.98 : lo
    const range = hi - floor || 1
    ctx.strokeStyle = color
    ctx.lineWidth = 1.2
    ctx.beginPath()
    const n = ys.length
    ys.forEach((y, i) => {
      if (y == null) return
      const x = (i / Math.max(n - 1, 1)) * (w - 2) + 1
      const yy = h - 1 - ((y - floor) / range) * (h - 3)
      if (i === 0) ctx.moveTo(x, yy); else ctx.lineTo(x, yy)
    })
    ctx.stroke()
  }

  return { line, spark }
})()
