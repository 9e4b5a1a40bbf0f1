from django.apps import AppConfig


class PrelabelConfig(AppConfig):
    name = "prelabel"
    verbose_name = "Model-assisted pre-labeling"

    def ready(self):
        # The annotator queue (labeling/queue.py) knows only "oldest first"; pre-labeling adds the
        # uncertainty-first order and the admin's choice of order, by explicit registration.
        from labeling import queue

        from .uncertainty import UNCERTAINTY_ORDER, configured_queue_order

        queue.register_queue_order(UNCERTAINTY_ORDER)
        queue.set_queue_order_source(configured_queue_order)
