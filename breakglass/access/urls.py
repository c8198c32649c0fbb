from django.urls import path

from breakglass.access import views

app_name = "access"

urlpatterns = [
    path("", views.registry, name="registry"),
    path("paths/<slug:slug>/request/", views.grant_request_view, name="request"),
    path("paths/<slug:slug>/break-glass/", views.break_glass_view, name="break_glass"),
    path("paths/<slug:slug>/card/", views.path_card_view, name="card"),
    path("grants/<int:pk>/", views.grant_detail, name="grant"),
    path("grants/<int:pk>/approve/", views.grant_approve_view, name="approve"),
    path("grants/<int:pk>/revoke/", views.grant_revoke_view, name="revoke"),
    path("grants/<int:pk>/review/", views.grant_review_view, name="review"),
    path("mine/", views.my_grants, name="mine"),
    path("approvals/", views.approvals_queue, name="approvals"),
    path("active/", views.active_board, name="active"),
    path("reviews/", views.review_queue, name="reviews"),
    path("api-tokens/", views.api_tokens, name="api_tokens"),
    path("policy/", views.policy_changes, name="policy"),
    path("policy/<int:pk>/approve/", views.policy_change_approve_view, name="policy_approve"),
]
