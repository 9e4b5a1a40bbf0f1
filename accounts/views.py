"""The session login page, behind the login lockout: while locked it answers 429 with Retry-After and says
how long to wait, without checking the password."""
from django.contrib.auth import views as auth_views

from . import lockout


class LoginView(auth_views.LoginView):
    def post(self, request, *args, **kwargs):
        username = request.POST.get("username")
        wait = lockout.seconds_locked(username, lockout.client_address(request))
        if not wait:
            return super().post(request, *args, **kwargs)
        form = self.get_form_class()(request, initial={"username": username})  # unbound: validating it would try the password
        context = self.get_context_data(form=form, locked_out_for=lockout.describe_wait(wait))
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(wait)
        return response
