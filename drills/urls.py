from django.urls import path

from drills import views

app_name = "drills"

urlpatterns = [
    path("", views.index, name="index"),
    path("killswitch/", views.killswitch, name="killswitch"),
    path("blackouts/", views.blackout, name="blackout"),
    path("report/", views.report, name="report"),
    path("paths/<slug:slug>/run/", views.run_now, name="run_now"),
    path("definitions/<slug:slug>/signoff/", views.signoff, name="signoff"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("runs/<int:run_id>/participate/", views.participate, name="participate"),
    path("runs/<int:run_id>/facilitate/", views.facilitate, name="facilitate"),
    path("gamedays/", views.gameday_new, name="gameday_new"),
    path("gamedays/<int:game_day_id>/", views.gameday, name="gameday"),
    path(
        "gamedays/<int:game_day_id>/kits/<slug:kit_id>/",
        views.gameday_kit_drill,
        name="gameday_kit_drill",
    ),
    path("gamedays/<int:game_day_id>/progress.json", views.gameday_json, name="gameday_json"),
]
