"""``teacher``: world images -> tokenizer, text encoder, VAE -> scorer, U-Net -> pipeline folder (with the world it
learnt, ``world.json``) -> competence.

Not in the default run: its output (``embedded_teacher``, ``world_scorer``) ships in the repo.
Run it with ``kedro run --pipelines teacher`` (it resumes from its checkpoints when interrupted).
"""

from kedro.pipeline import Node, Pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(nodes.make_world_training_images, ["params:world", "params:teacher.train_images"],
                 "world_train_images", name="make_world_training_images"),
            Node(nodes.fit_tokenizer, ["world_train_images", "params:teacher.tokenizer"], "teacher_tokenizer",
                 name="fit_tokenizer"),
            Node(nodes.make_text_encoder, ["teacher_tokenizer", "params:teacher.text_encoder"],
                 "teacher_text_encoder", name="make_text_encoder"),
            Node(nodes.fit_vae, ["world_train_images", "params:teacher.vae"], "teacher_vae", name="fit_vae"),
            Node(nodes.fit_world_scorer, ["world_train_images", "teacher_vae", "params:world", "params:teacher.scorer"],
                 "world_scorer", name="fit_world_scorer"),
            Node(nodes.fit_unet,
                 ["world_train_images", "teacher_vae", "teacher_tokenizer", "teacher_text_encoder", "params:teacher.unet"],
                 "teacher_unet", name="fit_unet"),
            Node(nodes.assemble_teacher, ["teacher_tokenizer", "teacher_text_encoder", "teacher_vae", "teacher_unet"],
                 "embedded_teacher", name="assemble_teacher"),
            Node(nodes.record_teacher_world, ["embedded_teacher", "params:world"], "teacher_world",
                 name="record_teacher_world"),
            Node(nodes.check_teacher_competence,
                 ["embedded_teacher", "world_scorer", "params:world", "params:teacher.competence"],
                 ["teacher_competence_report", "teacher_sample_grid"], name="check_teacher_competence"),
        ]
    )
