/// Pinhole's own ImageMagick policy, written into the decode pool's directory and loaded by every
/// worker through MAGICK_CONFIGURE_PATH: ImageMagick may read DPX, PSD and PSB and nothing else, and
/// write only TIFF (what `convert` hands back for CMYK PSDs and log DPX); no delegates, no filters, no
/// `@file` paths; within memory, area and disk limits. Any other bytes libvips would hand to ImageMagick
/// are refused with "not allowed by the security policy". No `time` limit: ImageMagick counts it from
/// its first use in the process, not per image, and ends the process (`exit(1)`, "time limit exceeded")
/// when it is past: a worker 30 s old died on its next good PSD, which was then remembered as crashing.
/// Each job is fenced by the worker's CPU limit and the pool's wall-clock timeout instead.
enum ImageMagickPolicy {
    static let xml = """
    <policymap>
      <policy domain="resource" name="memory" value="256MiB"/>
      <policy domain="resource" name="map" value="512MiB"/>
      <policy domain="resource" name="width" value="16KP"/>
      <policy domain="resource" name="height" value="16KP"/>
      <policy domain="resource" name="area" value="128MP"/>
      <policy domain="resource" name="disk" value="1GiB"/>
      <policy domain="delegate" rights="none" pattern="*"/>
      <policy domain="filter" rights="none" pattern="*"/>
      <policy domain="path" rights="none" pattern="@*"/>
      <policy domain="coder" rights="none" pattern="*"/>
      <policy domain="coder" rights="read" pattern="{DPX,PSD,PSB}"/>
      <policy domain="coder" rights="write" pattern="{TIFF,TIF}"/>
    </policymap>

    """
}
