from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from crm.admin import CustomerAdmin
        from crm.models import Customer
        from crm.signals import customer_erasing, customer_exporting, feedback_recorded, interactions_recorded

        from . import tasks  # noqa: F401  (registers how the services' jobs are enqueued, crm.jobs)
        from .admin import ActiveRecommendationInline
        from .receivers import (
            erase_customer,
            export_customer,
            invalidate_after_events,
            invalidate_after_feedback,
            invalidate_customer,
            remove_rejected_item,
        )

        feedback_recorded.connect(remove_rejected_item, dispatch_uid="recommendations.remove_rejected_item")
        customer_erasing.connect(erase_customer, dispatch_uid="recommendations.erase_customer")
        customer_exporting.connect(export_customer, dispatch_uid="recommendations.export_customer")
        # The serving recommendations on crm's customer page (crm imports no downstream app).
        CustomerAdmin.add_inline(ActiveRecommendationInline)
        # the cache of served lists (services/list_cache.py)
        feedback_recorded.connect(invalidate_after_feedback, dispatch_uid="recommendations.cache_feedback")
        customer_erasing.connect(invalidate_customer, dispatch_uid="recommendations.cache_erasing")
        post_save.connect(invalidate_customer, sender=Customer, dispatch_uid="recommendations.cache_customer_saved")
        post_delete.connect(invalidate_customer, sender=Customer, dispatch_uid="recommendations.cache_customer_deleted")
        interactions_recorded.connect(invalidate_after_events, dispatch_uid="recommendations.cache_events")
