from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm.admin import CustomerAdmin
        from crm.signals import customer_erasing, customer_exporting, feedback_recorded

        from . import tasks  # noqa: F401  (registers how the services' jobs are enqueued, crm.jobs)
        from .admin import ActiveRecommendationInline
        from .receivers import erase_customer, export_customer, remove_rejected_item

        feedback_recorded.connect(remove_rejected_item, dispatch_uid="recommendations.remove_rejected_item")
        customer_erasing.connect(erase_customer, dispatch_uid="recommendations.erase_customer")
        customer_exporting.connect(export_customer, dispatch_uid="recommendations.export_customer")
        # The serving recommendations on crm's customer page (crm imports no downstream app).
        CustomerAdmin.add_inline(ActiveRecommendationInline)
