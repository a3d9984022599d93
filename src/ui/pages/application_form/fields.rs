//! The form's building blocks: a labelled text input, text area, number input, checkbox and
//! select bound to one field of the form's store, each with its own parse problems under it,
//! and the domain's errors, warnings and suggestions of a section.

use leptos::prelude::*;

use crate::model::ValidationResult;

/// A field's value and its setter, from a store field.
#[derive(Clone, Copy)]
pub struct Bound<T: Send + Sync + 'static> {
    pub value: Signal<T>,
    pub set: Callback<T>,
}

/// Binds a store field (or any signal) for the field views.
pub fn bind<T, S>(field: S) -> Bound<T>
where
    T: Clone + Send + Sync + 'static,
    S: Get<Value = T> + Set<Value = T> + Copy + Send + Sync + 'static,
{
    Bound {
        value: Signal::derive(move || field.get()),
        set: Callback::new(move |value| field.set(value)),
    }
}

/// Problems under a field; nothing when there are none.
#[component]
pub fn FieldProblems(id: &'static str, problems: Signal<Vec<String>>) -> impl IntoView {
    view! {
        <Show when=move || problems.with(|problems| !problems.is_empty())>
            <ul class="field-problems inline-error" id=format!("{id}-problems")>
                {move || problems.get().into_iter().map(|problem| view! { <li>{problem}</li> }).collect_view()}
            </ul>
        </Show>
    }
}

/// What kind of text input a [`TextField`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Text,
    /// A whole number (`inputmode=numeric`; parsed by the form, so any text is kept).
    Number,
    /// Several lines.
    Lines,
}

/// A labelled input bound to one field.
#[component]
pub fn TextField(
    id: &'static str,
    label: &'static str,
    bound: Bound<String>,
    #[prop(optional)] kind: Kind,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional, into)] problems: Option<Signal<Vec<String>>>,
) -> impl IntoView {
    let problems = problems.unwrap_or_else(|| Signal::derive(Vec::new));
    let invalid = move || problems.with(|problems| !problems.is_empty()).to_string();
    let described = hint.map(|_| format!("{id}-hint"));
    let input = match kind {
        Kind::Lines => view! {
            <textarea
                id=id
                rows="3"
                placeholder=placeholder
                aria-invalid=invalid
                aria-describedby=described.clone()
                prop:value=move || bound.value.get()
                on:input=move |event| bound.set.run(event_target_value(&event))
            >
                {bound.value.get_untracked()}
            </textarea>
        }
        .into_any(),
        Kind::Text | Kind::Number => view! {
            <input
                id=id
                type="text"
                inputmode=(kind == Kind::Number).then_some("numeric")
                placeholder=placeholder
                aria-invalid=invalid
                aria-describedby=described.clone()
                value=bound.value.get_untracked()
                prop:value=move || bound.value.get()
                on:input=move |event| bound.set.run(event_target_value(&event))
            />
        }
        .into_any(),
    };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            {input}
            {hint.map(|hint| view! { <span class="field-hint" id=format!("{id}-hint")>{hint}</span> })}
            <FieldProblems id problems />
        </div>
    }
}

/// A labelled checkbox bound to one field.
#[component]
pub fn CheckField(
    id: &'static str,
    label: &'static str,
    bound: Bound<bool>,
    #[prop(optional)] hint: Option<&'static str>,
) -> impl IntoView {
    view! {
        <div class="field field--check">
            <input
                id=id
                type="checkbox"
                checked=bound.value.get_untracked()
                prop:checked=move || bound.value.get()
                on:change=move |event| bound.set.run(event_target_checked(&event))
            />
            <label for=id>{label}</label>
            {hint.map(|hint| view! { <span class="field-hint">{hint}</span> })}
        </div>
    }
}

/// A labelled select over a closed set of values bound to one field.
#[component]
pub fn SelectField<T>(
    id: &'static str,
    label: &'static str,
    bound: Bound<T>,
    /// (value, text people read).
    options: Vec<(T, &'static str)>,
    /// The value as it appears in the `value` attribute.
    key: fn(T) -> &'static str,
) -> impl IntoView
where
    T: Copy + PartialEq + Send + Sync + 'static,
{
    let choices = options.clone();
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <select
                id=id
                on:change=move |event| {
                    let chosen = event_target_value(&event);
                    if let Some((value, _)) = choices.iter().find(|(value, _)| key(*value) == chosen) {
                        bound.set.run(*value);
                    }
                }
            >
                {options
                    .into_iter()
                    .map(|(value, text)| {
                        view! {
                            <option value=key(value) selected=move || bound.value.get() == value>
                                {text}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </div>
    }
}

/// A section's verdict from the domain: errors block saving, warnings and suggestions
/// inform. `extra` are the form's own parse problems of the section, shown as errors.
#[component]
pub fn Checks(
    group: &'static str,
    result: Signal<ValidationResult>,
    #[prop(optional, into)] extra: Option<Signal<Vec<String>>>,
) -> impl IntoView {
    let extra = extra.unwrap_or_else(|| Signal::derive(Vec::new));
    let errors = Memo::new(move |_| {
        let mut errors = extra.get();
        errors.extend(result.with(|result| result.errors.clone()));
        errors
    });
    let warnings = Memo::new(move |_| result.with(|result| result.warnings.clone()));
    let suggestions = Memo::new(move |_| result.with(|result| result.suggestions().to_vec()));
    let list = |items: Memo<Vec<String>>, class: &'static str, title: &'static str| {
        view! {
            <Show when=move || items.with(|items| !items.is_empty())>
                <div class=format!("checks__list {class}")>
                    <span class="checks__title">{title}</span>
                    <ul>
                        {move || items.get().into_iter().map(|item| view! { <li>{item}</li> }).collect_view()}
                    </ul>
                </div>
            </Show>
        }
    };
    view! {
        <div class="checks" data-checks=group aria-live="polite">
            {list(errors, "checks__list--error", "Errors")}
            {list(warnings, "checks__list--warning", "Warnings")}
            {list(suggestions, "checks__list--suggestion", "Suggestions")}
        </div>
    }
}
