"""The media library in the admin, and the upload endpoint the article form's textarea uses.

Both take the same form: the file is checked and re-encoded by articles.imaging while the form
is validated (a refused file is a form error, 400 as JSON), and stored by one service call.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Func, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from .imaging import PreparedImage, image_check_size, image_prepare
from .models import Article, Image
from .selectors import image_usage
from .services import image_delete, image_store, image_update

UPLOAD_URL_NAME = "articles_image_upload"


class ImageUploadForm(forms.ModelForm):
    upload = forms.FileField(
        label=_("Datei"),
        help_text=_("JPEG, PNG, GIF oder WebP. Metadaten (auch GPS-Daten) werden entfernt."),
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png,image/gif,image/webp"}
        ),
    )

    class Meta:
        model = Image
        fields = ["alt_text", "caption", "credit"]

    prepared: PreparedImage | None = None

    def clean_upload(self):
        upload = self.cleaned_data["upload"]
        # The size is known before a byte is read: a 50 MB file is refused unread.
        image_check_size(size=upload.size)
        self.prepared = image_prepare(data=upload.read())
        return upload


class ImageChangeForm(forms.ModelForm):
    class Meta:
        model = Image
        fields = ["alt_text", "caption", "credit"]


def _articles_showing(image_ref) -> QuerySet[Article]:
    return Article.objects.filter(Q(feature_image=image_ref) | Q(body_images__image=image_ref))


class UsageFilter(admin.SimpleListFilter):
    title = _("Verwendung")
    parameter_name = "verwendet"

    def lookups(self, request, model_admin):
        return [("ja", _("in Artikeln verwendet")), ("nein", _("unbenutzt"))]

    def queryset(self, request, queryset):
        if self.value() == "ja":
            return queryset.filter(use_count__gt=0)
        if self.value() == "nein":
            return queryset.filter(use_count=0)
        return queryset


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "alt_text", "caption_credit", "uses", "uploaded"]
    list_display_links = ["thumbnail", "alt_text"]
    list_filter = [UsageFilter]
    search_fields = ["alt_text", "caption", "credit"]
    date_hierarchy = "created_at"
    readonly_fields = ["preview", "usage", "size", "uploaded_by", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Image]:
        # How many articles show each picture, as feature image or in the text: one
        # subquery in the list's query instead of two queries per row.
        count = (
            _articles_showing(OuterRef("pk"))
            .order_by()
            .annotate(n=Func(F("pk"), function="COUNT", template="COUNT(DISTINCT %(expressions)s)"))
            .values("n")
        )
        return super().get_queryset(request).annotate(use_count=Subquery(count))

    class Media:
        css = {"all": ["articles/image_upload.css", "articles/admin_lists.css"]}

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ImageChangeForm if obj is not None else ImageUploadForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["upload", "alt_text", "caption", "credit"]
        return [
            "preview",
            "alt_text",
            "caption",
            "credit",
            "usage",
            "size",
            "uploaded_by",
            "created_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    @admin.display(description=_("Bild"))
    def thumbnail(self, obj: Image) -> str:
        small = obj.rendition(min_width=0)
        return format_html(
            '<img class="media-thumb" src="{}" alt="" width="96" height="{}" loading="lazy">',
            _storage_url(small["jpeg"]),
            max(1, round(96 * small["height"] / small["width"])),
        )

    @admin.display(description=_("Vorschau"))
    def preview(self, obj: Image) -> str:
        item = obj.rendition(min_width=480)
        return format_html(
            '<img class="media-preview" src="{}" alt="{}" width="{}" height="{}">',
            _storage_url(item["jpeg"]),
            obj.alt_text,
            item["width"],
            item["height"],
        )

    @admin.display(description=_("Bildunterschrift / Nachweis"))
    def caption_credit(self, obj: Image) -> str:
        return " · ".join(part for part in (obj.caption, obj.credit) if part) or "–"

    @admin.display(description=_("hochgeladen am"), ordering="created_at")
    def uploaded(self, obj: Image) -> str:
        return date_format(timezone.localtime(obj.created_at), "SHORT_DATE_FORMAT")

    @admin.display(description=_("Verwendet in"), ordering="use_count")
    def uses(self, obj: Image) -> str:
        if not obj.use_count:
            return "–"
        return ngettext("%(count)d Artikel", "%(count)d Artikeln", obj.use_count) % {
            "count": obj.use_count
        }

    @admin.display(description=_("Verwendung"))
    def usage(self, obj: Image) -> str:
        uses = image_usage(image=obj)
        if not uses:
            return _("Kein Artikel zeigt dieses Bild; es kann gelöscht werden.")
        roles = {
            (True, False): _("Titelbild"),
            (False, True): _("im Text"),
            (True, True): _("Titelbild und im Text"),
        }
        return format_html(
            '<ul class="media-usage">{}</ul>',
            format_html_join(
                "",
                '<li><a href="{}">{}</a> ({}, {})</li>',
                (
                    (
                        reverse("admin:articles_article_change", args=[use.article.pk]),
                        use.article.title,
                        roles[use.feature, use.body],
                        use.article.get_status_display(),
                    )
                    for use in uses
                ),
            ),
        )

    @admin.display(description=_("Größe"))
    def size(self, obj: Image) -> str:
        return f"{obj.width} × {obj.height}"

    def save_model(self, request, obj, form, change):
        if change:
            image_update(image=obj)
            return
        image_store(
            prepared=form.prepared,
            alt_text=form.cleaned_data["alt_text"],
            caption=form.cleaned_data.get("caption", ""),
            credit=form.cleaned_data.get("credit", ""),
            uploaded_by=request.user,
            image=obj,
        )

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            # The articles showing the picture are why it stays, not the editor's rights
            # (published articles have no delete right at all): list them as such.
            perms_needed = set()
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        image_delete(image=obj)

    def delete_queryset(self, request, queryset):
        # The admin has already refused a selection with a picture in use (PROTECT). One
        # transaction, as the queryset.delete() this replaces: a picture put to use meanwhile
        # keeps the whole selection, files included (they go only on commit).
        with transaction.atomic():
            for image in queryset:
                image_delete(image=image)

    def get_urls(self):
        upload = path(
            "upload/",
            self.admin_site.admin_view(self.upload_view),
            name=UPLOAD_URL_NAME,
        )
        return [upload, *super().get_urls()]

    @method_decorator(require_POST)
    def upload_view(self, request: HttpRequest) -> JsonResponse:
        """Upload from the article form (button, paste, drop): form data in, JSON out.

        admin_view has already checked staff status and CSRF; adding images is its own right.
        """
        if not self.has_add_permission(request):
            raise PermissionDenied
        return _upload(request)


def _storage_url(name: str) -> str:
    return default_storage.url(name)


def _upload(request: HttpRequest) -> JsonResponse:
    form = ImageUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    image = image_store(
        prepared=form.prepared,
        alt_text=form.cleaned_data["alt_text"],
        caption=form.cleaned_data.get("caption", ""),
        credit=form.cleaned_data.get("credit", ""),
        uploaded_by=request.user,
    )
    body = image.rendition(min_width=960)
    url = _storage_url(body["jpeg"])
    alt = image.alt_text.replace("[", "").replace("]", "")
    return JsonResponse(
        {
            "id": image.pk,
            "url": url,
            "width": body["width"],
            "height": body["height"],
            "alt": image.alt_text,
            "markdown": f"![{alt}]({url})",
            "change_url": reverse("admin:articles_image_change", args=[image.pk]),
        },
        status=201,
    )


__all__ = ["ImageAdmin", "ImageUploadForm", "UPLOAD_URL_NAME"]
