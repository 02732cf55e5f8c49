//! A paper's report sections as data: text, a table and figures described by their numbers. The
//! harness draws the figures (SVG) and renders the page; a paper never produces HTML or SVG.

/// One named series of `(x, y)` points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
}

/// One bar of [`Figure::Bars`]: a label, the mean and its interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Category label under the bar.
    pub label: String,
    /// Bar height.
    pub mean: f64,
    /// Lower end of the interval (whisker).
    pub lo: f64,
    /// Upper end of the interval (whisker).
    pub hi: f64,
}

/// One labelled row of [`Figure::Tokens`]: pieces of text, each with its category.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRow {
    /// Label before the text (e.g. the domain).
    pub label: String,
    /// `(text, category)` per token, in order; their concatenation is the row's text.
    pub tokens: Vec<(String, usize)>,
}

/// A figure, as the data it shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Figure {
    /// A line plot (`lines`) or a scatter of the series.
    Xy {
        /// Title.
        title: String,
        /// Label of the x axis.
        x_label: String,
        /// Label of the y axis.
        y_label: String,
        /// The series, one colour each.
        series: Vec<Series>,
        /// Lines (`true`) or points.
        lines: bool,
    },
    /// A heatmap of `values [rows, cols]` (row-major, each in `[0, 1]`); cells with
    /// `outlined[r·cols + c]` get a border.
    Heatmap {
        /// Title.
        title: String,
        /// Label of the x axis (columns).
        x_label: String,
        /// Label of the y axis (rows).
        y_label: String,
        /// `[rows, cols]`.
        shape: [usize; 2],
        /// Row-major values, `rows · cols` of them.
        values: Vec<f64>,
        /// Row-major outline flags, empty or `rows · cols` of them.
        outlined: Vec<bool>,
    },
    /// Bars with interval whiskers and horizontal reference lines `(label, value)`.
    Bars {
        /// Title.
        title: String,
        /// Label of the y axis.
        y_label: String,
        /// The bars, left to right.
        bars: Vec<Bar>,
        /// Reference lines.
        references: Vec<(String, f64)>,
    },
    /// Text coloured token by token by category (Mixtral's Fig. 8: each token by its
    /// first-choice expert), drawn as HTML spans with a legend, readable without JavaScript.
    Tokens {
        /// Title.
        title: String,
        /// Category names, by index (the legend); a token's category indexes this list.
        categories: Vec<String>,
        /// The rows.
        rows: Vec<TokenRow>,
    },
}

impl Figure {
    /// [`Figure::Xy`].
    pub fn xy(title: &str, x_label: &str, y_label: &str, series: &[Series], lines: bool) -> Self {
        Figure::Xy {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: series.to_vec(),
            lines,
        }
    }

    /// [`Figure::Heatmap`].
    pub fn heatmap(
        title: &str,
        x_label: &str,
        y_label: &str,
        shape: [usize; 2],
        values: &[f64],
        outlined: &[bool],
    ) -> Self {
        Figure::Heatmap {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            shape,
            values: values.to_vec(),
            outlined: outlined.to_vec(),
        }
    }

    /// [`Figure::Bars`].
    pub fn bars(title: &str, y_label: &str, bars: &[Bar], references: &[(String, f64)]) -> Self {
        Figure::Bars {
            title: title.into(),
            y_label: y_label.into(),
            bars: bars.to_vec(),
            references: references.to_vec(),
        }
    }
}

/// A plain table: header cells and rows of text cells.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

/// A paper-specific part of a paper page: a note, an optional table, figures and a caption,
/// built by the paper from the run's units.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// A paragraph above the table.
    pub note: String,
    /// A table, if any.
    pub table: Option<Table>,
    /// Figures, one `<figure>` each.
    pub figures: Vec<Figure>,
    /// Caption under the figures.
    pub caption: String,
}
