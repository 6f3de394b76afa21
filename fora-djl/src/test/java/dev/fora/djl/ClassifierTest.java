package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The shipped classifier: logits and features of generated images, and it recognises what the DiT draws. */
class ClassifierTest {

    @Test
    void classifiesGeneratedImages() throws Exception {
        TestModels.requireShipped();
        DiTPipeline p = TestModels.pipeline();
        TorchScriptClassifier clf = p.classifier().orElseThrow(() -> new AssertionError("the shipped model has no classifier"));
        assertThat(clf.classes()).hasSize(p.config().numClasses());
        int[] labels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
        GeneratedImages images = p.generate(GenerationRequest.builder(labels).steps(50).cfgScale(1.5).seed(3).build());
        float[][] logits = clf.logits(images);
        float[][] features = clf.features(images);
        assertThat(logits).hasNumberOfRows(labels.length);
        assertThat(logits[0]).hasSize(labels.length);
        assertThat(features[0]).hasSize(64);
        int[] predicted = clf.predict(images);
        int correct = 0;
        for (int i = 0; i < labels.length; i++) {
            correct += predicted[i] == labels[i] ? 1 : 0;
        }
        System.out.printf("classifier: %d of %d generated images recognised as their class%n", correct, labels.length);
        assertThat(correct).isGreaterThanOrEqualTo(5);
    }
}
