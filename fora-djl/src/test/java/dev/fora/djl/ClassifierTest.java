package dev.fora.djl;

import static dev.fora.djl.Goldens.maxAbsDiff;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import org.junit.jupiter.api.Test;

/**
 * The wrapper of the shipped classifier: logits and features of generated images, consistent
 * predictions, and the Python classifier's outputs. How often the
 * DiT draws the right class is a property of the trained model; it is printed here and judged
 * by the quality reports of fora-examples.
 */
class ClassifierTest {

    @Test
    void classifiesGeneratedImages() throws Exception {
        DiTPipeline p = TestModels.pipeline();
        TorchScriptClassifier clf = p.classifier().orElseThrow(() -> new AssertionError("the shipped model has no classifier"));
        int classes = p.config().numClasses();
        assertThat(clf.classes()).hasSize(classes);
        int[] labels = new int[classes];
        for (int i = 0; i < classes; i++) {
            labels[i] = i;
        }
        GeneratedImages images = p.generate(GenerationRequest.builder(labels).steps(50).cfgScale(1.5).seed(3).build());
        float[][] logits = clf.logits(images);
        float[][] features = clf.features(images);
        assertThat(logits).hasNumberOfRows(labels.length);
        assertThat(logits[0]).hasSize(classes);
        assertThat(features).hasNumberOfRows(labels.length);
        assertThat(features[0]).hasSize(64);
        int[] predicted = clf.predict(images);
        int correct = 0;
        for (int i = 0; i < labels.length; i++) {
            int best = 0;
            for (int k = 1; k < classes; k++) {
                best = logits[i][k] > logits[i][best] ? k : best;
            }
            assertThat(predicted[i]).isEqualTo(best);
            correct += predicted[i] == labels[i] ? 1 : 0;
        }
        System.out.printf("classifier: %d of %d generated images (DDIM-50, cfg 1.5) recognised as their class%n", correct,
                labels.length);
        // Same images again: the classifier is deterministic.
        assertThat(clf.logits(images)).isDeepEqualTo(logits);
    }

    /** The goldens carry the Python classifier's outputs for one of their arrays. */
    @Test
    void matchesThePythonClassifier() throws Exception {
        Goldens g = Goldens.forModel(TestModels.modelDir());
        JsonObject c = g.classifier();
        assertThat(c).as("the goldens' classifier outputs").isNotNull();
        TorchScriptClassifier clf = TestModels.pipeline().classifier().orElseThrow();
        String input = c.get("input").getAsString();
        float[] images = g.array(input);
        long[] shape = g.shape(input);
        double logits = maxAbsDiff(flatten(clf.logits(images, shape)), g.array(c.get("logits").getAsString()));
        double features = maxAbsDiff(flatten(clf.features(images, shape)), g.array(c.get("features").getAsString()));
        System.out.printf("classifier vs Python: logits %.3g, features %.3g%n", logits, features);
        assertThat(logits).isLessThanOrEqualTo(1e-4);
        assertThat(features).isLessThanOrEqualTo(1e-4);
    }

    private static float[] flatten(float[][] rows) {
        float[] out = new float[rows.length * rows[0].length];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(rows[i], 0, out, i * rows[0].length, rows[0].length);
        }
        return out;
    }
}
