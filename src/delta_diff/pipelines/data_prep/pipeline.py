"""``data_prep``: training images -> prompt sets and the latent/text cache (versioned) -> a data summary."""

from kedro.pipeline import Node, Pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(nodes.collect_training_images, ["params:world", "params:data_prep.training_images"],
                 "training_images", name="collect_training_images"),
            Node(nodes.build_prompt_sets,
                 ["training_images", "embedded_teacher", "params:world", "params:data_prep.prompt_sets"],
                 "prompt_sets", name="build_prompt_sets"),
            Node(nodes.cache_latents_and_text, ["training_images", "embedded_teacher", "params:data_prep.cache",
                                                  "params:runtime"],
                 "training_cache", name="cache_latents_and_text"),
            Node(nodes.summarise_data, ["training_images", "prompt_sets", "training_cache"], "data_summary",
                 name="summarise_data"),
        ]
    )
