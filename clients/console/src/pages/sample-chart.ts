import type uPlot from "uplot";

type Data = [number[], ...number[][]];

/** One line of the chart. */
export interface Line {
  label: string;
  stroke: string;
}

const xyz: Line[] = [
  { label: "x", stroke: "#2563eb" },
  { label: "y", stroke: "#16a34a" },
  { label: "z", stroke: "#dc2626" },
];

/**
 * Lines over time in one uPlot chart (x, y and z by default). uPlot (and its stylesheet) load with the first
 * chart, so the other pages never download them. The chart follows its host's width.
 */
export class SampleChart {
  #plot: uPlot | undefined;
  #resize: ResizeObserver | undefined;

  constructor(
    private readonly host: HTMLElement,
    private readonly lines: Line[] = xyz,
    private readonly yLabel = "value",
    private readonly height = 320,
  ) {}

  async draw(data: Data): Promise<void> {
    if (this.#plot !== undefined) {
      this.#plot.setData(data);
      return;
    }
    const [{ default: UPlot }] = await Promise.all([
      import("uplot"),
      import("uplot/dist/uPlot.min.css"),
    ]);
    // Another draw may have created the chart while uPlot loaded.
    const drawn = this.#plot as uPlot | undefined;
    if (drawn !== undefined) {
      drawn.setData(data);
      return;
    }
    const width = () => Math.max(320, this.host.clientWidth);
    this.#plot = new UPlot(
      {
        width: width(),
        height: this.height,
        series: [{}, ...this.lines.map((line) => ({ ...line, width: 1.5 }))],
        axes: [{}, { label: this.yLabel }],
        legend: { live: true },
        cursor: { drag: { x: true, y: false } },
      },
      data,
      this.host,
    );
    this.#resize = new ResizeObserver(() =>
      this.#plot?.setSize({ width: width(), height: this.height }),
    );
    this.#resize.observe(this.host);
  }

  clear(): void {
    this.destroy();
    this.host.replaceChildren();
  }

  destroy(): void {
    this.#resize?.disconnect();
    this.#plot?.destroy();
    this.#plot = undefined;
  }
}
