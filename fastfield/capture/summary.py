"""The report ``fastfield process`` prints when it is done."""
from typing import Dict, List

TRAIN_SIZE = 1024  # longer image side the suggested training command aims at
STAGES = ("frames", "checking", "features", "matching", "mapping", "undistortion", "writing")


def _names(names: List[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def format_summary(summary: Dict) -> str:
    """Lines: what registered, the camera, the layout and bounds, time per stage, what was
    written and how to train on it."""
    lines = []
    source = (f"{summary['images']} frames of the video" if summary["kind"] == "video"
              else f"{summary['images']} photos")
    lines.append(f"registered {summary['registered']} of {source} "
                 f"({summary['matching']} matching); mean reprojection error "
                 f"{summary['mean_reprojection_error']:.2f} px; {summary['points']} sparse points "
                 f"({summary['inlier_points']} inliers)")
    if summary["unregistered"]:
        lines.append(f"not registered: {_names(summary['unregistered'])}")
    if summary["other_models"]:
        sizes = ", ".join(str(n) for n in summary["other_models"])
        lines.append(f"dropped {len(summary['other_models'])} smaller model(s) of {sizes} "
                     f"images (the largest model is kept)")
    undistorted = summary["undistorted"]
    lines.append(f"camera: {summary['camera']}; undistorted to pinhole "
                 f"{undistorted['width']}x{undistorted['height']}, "
                 f"fx {undistorted['fl_x']:.1f} fy {undistorted['fl_y']:.1f}")
    how = ("detected" if summary["forward_facing_from"] == "detected"
           else "chosen with --forward-facing")
    evidence = (f"views within {summary['view_angle_deg']:.0f} deg of their mean, "
                f"{100 * summary['points_in_front']:.0f}% of the points in front of every "
                f"camera")
    if summary["forward_facing"]:
        lines.append(f"layout: forward-facing ({how}: {evidence}): the NeRF presets render it "
                     f"in NDC, as LLFF scenes (data.ndc=false to turn off)")
    else:
        lines.append(f"layout: not forward-facing ({how}: {evidence}): the NeRF presets sample "
                     f"between near and far, no NDC (data.ndc=true to turn on)")
    closest, farthest = summary["depth_range"]
    low, high = summary["aabb"]
    box = " x ".join(f"[{a:.2f}, {b:.2f}]" for a, b in zip(low, high))
    lines.append(f"bounds (scene units; cameras inside [-1, 1]^3, z up): depths {closest:.3f} "
                 f"to {farthest:.3f}, box {box}; NeuS sphere radius "
                 f"{summary['roi']['radius']:.3f} around the region of interest")
    stages = ", ".join(f"{stage} {summary['seconds'][stage]:.1f} s" for stage in STAGES
                       if stage in summary["seconds"])
    lines.append(f"time: {stages} (total {summary['total_seconds']:.1f} s)")
    masks = ", masks/ (+ masks_2, masks_4, masks_8)" if summary["masks"] else ""
    lines.append(f"wrote {summary['out']}: transforms.json, images/ (+ images_2, images_4, "
                 f"images_8){masks}, sparse_pc.ply, cameras_sphere.npz, colmap/sparse/0")
    # Suggest the images_N folder that brings the longer side to about a thousand pixels.
    longer = max(undistorted["width"], undistorted["height"])
    factor = next((f for f in (1, 2, 4) if longer / f <= TRAIN_SIZE), 8)
    shrink = (f" --set data.downscale={factor}  (images_{factor}: the photos are "
              f"{undistorted['width']}x{undistorted['height']})" if factor > 1 else "")
    lines.append(f"next: fastfield train --preset nerf-small --data {summary['out']}{shrink}")
    return "\n".join(lines)
