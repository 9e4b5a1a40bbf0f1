from django.apps import AppConfig


class PrelabelConfig(AppConfig):
    name = "prelabel"
    verbose_name = "Model-assisted pre-labeling"

    def ready(self):
        # The annotator queue (labeling/queue.py) knows only "oldest first"; pre-labeling adds the
        # uncertainty-first order and the admin's choice of order, by explicit registration.
        # New images get the active model's drafts after ingest, and the annotation page loads the script that
        # records when an image was opened and shows a draft: registered with labeling/extensions.py, as is the
        # active model's nail probability that click-a-nail refines (prelabel/click_foreground.py) and its per-nail
        # votes that the label suggestions weigh (prelabel/model_votes.py).
        from labeling import extensions, queue

        from .auto import prelabel_new_images
        from .click_foreground import active_foreground
        from .model_votes import active_nail_votes
        from .uncertainty import UNCERTAINTY_ORDER, configured_queue_order

        queue.register_queue_order(UNCERTAINTY_ORDER)
        queue.set_queue_order_source(configured_queue_order)
        extensions.register_after_ingest(prelabel_new_images)
        extensions.register_annotate_script("prelabel/opened.js")
        extensions.register_foreground_provider(active_foreground)
        extensions.register_vote_provider(active_nail_votes)
