from django.urls import path

from . import feeds, views

app_name = "articles"
urlpatterns = [
    path("", views.article_list, name="list"),
    path("artikel/<slug:slug>/", views.article_detail, name="detail"),
    path("vorschau/<int:pk>/", views.article_preview, name="preview"),
    path("vorschau/ungespeichert/", views.article_preview_unsaved, name="preview_unsaved"),
    path("thema/<slug:slug>/", views.topic_detail, name="topic"),
    path("feed/rss/", feeds.LatestArticlesRss(), name="feed_rss"),
    path("feed/atom/", feeds.LatestArticlesAtom(), name="feed_atom"),
    path("thema/<slug:slug>/feed/rss/", feeds.TopicArticlesRss(), name="topic_feed_rss"),
    path("thema/<slug:slug>/feed/atom/", feeds.TopicArticlesAtom(), name="topic_feed_atom"),
    path("robots.txt", views.robots_txt, name="robots"),
    path("impressum/", views.static_page, {"template": "impressum"}, name="impressum"),
    path("datenschutz/", views.static_page, {"template": "datenschutz"}, name="datenschutz"),
]
