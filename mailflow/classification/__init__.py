"""Understanding an email: what is asked (intent), about what (topic), and the taxonomy's category.

The catalogue (``classifiers/``) holds the business rules and the certain evidence; the learned model
(``learning/``) what examples taught; ``combine`` weighs both and says how sure that is.
"""
