"""``/api/v1/`` routes of the recommendations app."""
from django.urls import path

from . import apis, session_api

app_name = "recommendations-api"

urlpatterns = [
    path("customers/<str:external_id>/recommendations", apis.CustomerRecommendationsApi.as_view(),
         name="customer-recommendations"),
    path("recommendations/session", session_api.SessionRecommendationsApi.as_view(), name="session-recommendations"),
    path("items/<str:sku>/similar", apis.ItemSimilarApi.as_view(), name="item-similar"),
    path("model-versions", apis.ModelVersionListApi.as_view(), name="model-versions"),
    path("model-versions/<int:pk>", apis.ModelVersionDetailApi.as_view(), name="model-version"),
    path("model-versions/<int:pk>/activate", apis.ModelVersionActivateApi.as_view(), name="model-version-activate"),
    path("training-runs", apis.TrainingRunListStartApi.as_view(), name="training-runs"),
    path("training-runs/<int:pk>", apis.TrainingRunDetailApi.as_view(), name="training-run"),
]
