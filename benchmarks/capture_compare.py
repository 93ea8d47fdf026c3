"""Compare two NeuS runs on DTU scan24, one on the dataset's cameras and one on the cameras
``fastfield process`` recovered: their meshes in the dataset's world (Chamfer distance), and
their masked PSNR. Used by benchmarks/capture_e2e.sh; numbers go to benchmarks/RESULTS.md.

    python benchmarks/capture_compare.py DATASET_RUN RECOVERED_RUN DTU_FOLDER CAPTURE_FOLDER

The recovered run's mesh is in the capture's frame (its cameras_sphere.npz scale_mat maps the
unit sphere there); the similarity that best maps the capture's camera centres onto the
dataset's (Umeyama) carries it into the dataset's world, where the other mesh already is.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

from fastfield.capture import align
from fastfield.data import load_neus
from fastfield.mesh import chamfer_distance, read_ply, sample_mesh_points

N_POINTS = 20_000


def main(dataset_run: Path, recovered_run: Path, dtu: Path, capture: Path) -> dict:
    dataset = load_neus(dtu, use_masks=False)
    scale_mat = dataset.scale_mat.double().numpy()
    cameras = dataset.split("train").cameras.c2w.double().numpy()
    world_centres = cameras[:, :, 3] @ scale_mat[:3, :3].T + scale_mat[:3, 3]
    meta = json.loads((capture / "transforms.json").read_text())
    index = [int(Path(frame["file_path"]).stem) for frame in meta["frames"]]
    centres = np.array([frame["transform_matrix"] for frame in meta["frames"]])[:, :3, 3]
    similarity = align(centres, world_centres[index])
    spread = np.linalg.norm(world_centres - world_centres.mean(0), axis=1).max()
    alignment = np.linalg.norm(similarity.apply(centres) - world_centres[index], axis=1)

    generator = torch.Generator().manual_seed(0)
    vertices, faces, _ = read_ply(dataset_run / "mesh.ply")
    reference = sample_mesh_points(vertices, faces, N_POINTS, generator)
    vertices, faces, _ = read_ply(recovered_run / "mesh.ply")
    moved = similarity.apply(vertices.astype(np.float64))
    recovered = sample_mesh_points(moved, faces, N_POINTS, generator)
    second = sample_mesh_points(*read_ply(dataset_run / "mesh.ply")[:2], N_POINTS, generator)
    radius = float(scale_mat[0, 0])
    result = {"registered": len(index), "camera_centre_error_max": float(alignment.max() / spread),
              "chamfer": chamfer_distance(recovered, reference),
              "chamfer_same_mesh_resampled": chamfer_distance(second, reference),
              "sphere_radius": radius}
    for run, name in ((dataset_run, "dataset"), (recovered_run, "recovered")):
        metrics = json.loads((run / "eval_test" / "metrics.json").read_text())
        result[f"{name}_psnr_masked"] = metrics.get("mean_psnr_masked")
        result[f"{name}_psnr"] = metrics["mean_psnr"]
    return result


if __name__ == "__main__":
    print(json.dumps(main(*map(Path, sys.argv[1:5])), indent=2))
