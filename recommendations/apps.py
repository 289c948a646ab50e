from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm.signals import feedback_recorded

        from .receivers import remove_rejected_item

        feedback_recorded.connect(remove_rejected_item, dispatch_uid="recommendations.remove_rejected_item")
